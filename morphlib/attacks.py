"""Adversarial attacks used to train and to check robust models.

Examples
--------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
>>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
>>> x_adv = pgd_l2(net, x, y, eps=0.5, steps=3)
>>> bool(((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all())
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _l2_normalise(v: torch.Tensor) -> torch.Tensor:
    norm = v.flatten(1).norm(dim=1).clamp_min(1e-12)
    return v / norm.view(-1, *([1] * (v.dim() - 1)))


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norm).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def pgd_l2(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L2 projected gradient ascent on the cross-entropy (Madry et al., 2018).

    Parameters
    ----------
    model : nn.Module
        Maps ``[0, 1]`` images to logits. Its mode (train/eval) is left as it is.
    images : torch.Tensor
        ``(B, C, H, W)`` in ``[0, 1]``.
    labels : torch.Tensor
        ``(B,)`` true classes, whose loss the attack increases.
    eps : float
        Radius of the L2 ball, in ``[0, 1]`` pixel units, over the whole image.
    steps : int
        Number of gradient steps.
    step_size : float, optional
        L2 length of each step; default ``2.5 * eps / steps``.
    random_start : bool
        Start from a random point of the ball (uniform direction, uniform radius).
    generator : torch.Generator, optional
        Source of randomness for the start, for reproducible attacks.

    Returns
    -------
    torch.Tensor
        Adversarial images in ``[0, 1]`` with ``||x_adv - x||_2 <= eps`` per image.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    images = images.detach()
    if eps == 0 or steps <= 0:
        return images.clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    delta = torch.zeros_like(images)
    if random_start:
        noise = torch.randn(images.shape, generator=generator, device="cpu").to(images)
        radius = torch.rand(images.shape[0], generator=generator, device="cpu").to(images)
        delta = _l2_normalise(noise) * (eps * radius).view(-1, *([1] * (images.dim() - 1)))
        delta = (images + delta).clamp(0, 1) - images
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(images + delta), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = _project_l2(delta + step_size * _l2_normalise(grad), eps)
            delta = (images + delta).clamp(0, 1) - images
    return (images + delta).detach()


@torch.no_grad()
def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (model(images).argmax(1) == labels).float().mean().item()


def robust_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int = 10,
    batch_size: int = 250,
    seed: int = 0,
) -> float:
    """Accuracy of ``model`` under :func:`pgd_l2` at radius ``eps`` (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    correct = 0.0
    for start in range(0, len(images), batch_size):
        x, y = images[start : start + batch_size], labels[start : start + batch_size]
        x_adv = pgd_l2(model, x, y, eps, steps=steps, generator=generator)
        correct += _accuracy(model, x_adv, y) * len(x)
    return correct / len(images)
