"""L-BFGS over a batch of independent problems, each with its own history and step.

``torch.optim.LBFGS`` treats a batch as one problem: one line search and one curvature
history for all parameters, so what one image's fit does depends on what else is in the
batch.  Here row ``b`` of the parameters is problem ``b``: its direction comes from its
own history (two-loop recursion), its step from its own backtracking (Armijo) line
search, and it stops on its own tolerances.  Every problem follows the path it would
follow alone, so a batch of fits gives each fit's result at the cost of batched
evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# Per problem: (B, n) parameters -> (B,) losses; must be differentiable row by row.
Objective = Callable[[Tensor], Tensor]

ARMIJO = 1e-4  # sufficient-decrease constant
BACKTRACKS = 12  # halvings of a step before a problem stops for lack of progress
TOLERANCE_GRAD = 1e-7  # stop when the largest gradient entry is below this
TOLERANCE_CHANGE = 1e-9  # ... or the loss or the step changes by less than this


def _loss_and_grad(objective: Objective, x: Tensor) -> tuple[Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    loss = objective(x)
    (grad,) = torch.autograd.grad(loss.sum(), x)  # rows are independent: each row's own gradient
    return loss.detach(), grad


def _direction(grad: Tensor, s: Tensor, y: Tensor, rho: Tensor, gamma: Tensor, newest: int) -> Tensor:
    """``-H grad`` by the two-loop recursion, newest pair first; empty slots have ``rho = 0``."""
    m = s.shape[1]
    order = [(newest - k) % m for k in range(m)]
    q = -grad
    alphas = {}
    for i in order:
        alphas[i] = rho[:, i] * (s[:, i] * q).sum(1)
        q = q - alphas[i][:, None] * y[:, i]
    r = gamma[:, None] * q
    for i in reversed(order):
        beta = rho[:, i] * (y[:, i] * r).sum(1)
        r = r + (alphas[i] - beta)[:, None] * s[:, i]
    return r


def minimize(objective: Objective, x0: Tensor, *, iterations: int, history: int = 10) -> Tensor:
    """Minimise ``objective`` row by row from ``x0`` ``(B, n)``; returns the ``(B, n)`` minimisers.

    Each row takes at most ``iterations`` L-BFGS steps.  The first step of a row is scaled
    to ``1 / |grad|_1`` (as ``torch.optim.LBFGS`` does), later ones start at 1.
    """
    x = x0.detach().clone()
    b, n = x.shape
    s = x.new_zeros(b, history, n)
    y = x.new_zeros(b, history, n)
    rho = x.new_zeros(b, history)
    gamma = x.new_ones(b)
    loss, grad = _loss_and_grad(objective, x)
    active = grad.abs().amax(1) > TOLERANCE_GRAD
    for it in range(iterations):
        if not active.any():
            break
        slot = it % history
        d = _direction(grad, s, y, rho, gamma, (it - 1) % history)
        slope = (grad * d).sum(1)
        uphill = slope >= 0  # a stale curvature pair can point uphill: fall back to the gradient
        d = torch.where(uphill[:, None], -grad, d)
        slope = torch.where(uphill, -(grad * grad).sum(1), slope)
        t = torch.where(rho.abs().sum(1) > 0, torch.ones_like(loss), (1 / grad.abs().sum(1)).clamp(max=1))
        pending = active.clone()
        new_x, new_loss, new_grad = x.clone(), loss.clone(), grad.clone()
        for _ in range(BACKTRACKS):
            trial = x + (t * pending)[:, None] * d
            trial_loss, trial_grad = _loss_and_grad(objective, trial)
            ok = pending & (trial_loss <= loss + ARMIJO * t * slope)
            new_x = torch.where(ok[:, None], trial, new_x)
            new_loss = torch.where(ok, trial_loss, new_loss)
            new_grad = torch.where(ok[:, None], trial_grad, new_grad)
            pending = pending & ~ok
            if not pending.any():
                break
            t = torch.where(pending, t / 2, t)
        moved = active & ~pending
        step, change = new_x - x, new_grad - grad
        ys = (step * change).sum(1)
        keep = moved & (ys > 1e-10)  # a pair without positive curvature would break H's definiteness
        s[:, slot] = torch.where(keep[:, None], step, 0)
        y[:, slot] = torch.where(keep[:, None], change, 0)
        rho[:, slot] = torch.where(keep, 1 / ys.where(keep, 1), 0)
        gamma = torch.where(keep, ys / (change * change).sum(1).where(keep, 1), gamma)
        settled = (
            (new_grad.abs().amax(1) <= TOLERANCE_GRAD)
            | (step.abs().amax(1) <= TOLERANCE_CHANGE)
            | ((loss - new_loss).abs() < TOLERANCE_CHANGE)
        )
        x, loss, grad = new_x, new_loss, new_grad
        active = active & ~pending & ~settled  # a row whose line search failed has stalled
    return x
