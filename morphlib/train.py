"""Train the small bundled classifiers: ``python -m morphlib train DATASET``.

Seeded CPU training of a tiny timm architecture on one of :mod:`morphlib.data`'s
sets, optionally with L2 PGD adversarial training (``--robust l2:EPS``). The
result is written in timm's Hugging Face layout (``config.json`` +
``model.safetensors``, float16 weights), so bundled and Hub models share one
loader, with ``metrics.json`` beside it holding the numbers for ``zoo.yaml``.

Examples
--------
A short run (the bundled models use the defaults)::

    python -m morphlib train shapes --epochs 1 --n-train 500 --out /tmp/shapes-cnn
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from morphlib import data
from morphlib.attacks import pgd_l2, robust_accuracy
from morphlib.zoo.model import Preprocess
from morphlib.zoo.pixel_models import PixelKNN

#: Normalisation applied in front of every bundled network.
MEAN, STD = 0.5, 0.25
#: Architectures by short name: the timm model and the arguments that shrink it.
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    "resnet": ("test_resnet", {"channels": [16, 32, 32, 48]}),
    "effnet": ("test_efficientnet", {}),
    # A transformer judge: no convolutional prior shared with the drivers.
    "vit": ("test_vit", {"patch_size": 4, "img_size": None}),
    # Judges on the flattened pixels (morphlib.zoo.pixel_models): no convolution at all.
    "mlp": ("pixel_mlp", {"hidden": [256, 256], "img_size": None}),
    # Not a neural network: k nearest neighbours among the stored training images, no training.
    "knn": ("pixel_knn", {"k": 5, "img_size": None, "mean": MEAN, "std": STD}),
}
#: Training length per data set (digits is small, so it gets more passes).
DEFAULT_EPOCHS: dict[str, int] = {"shapes": 12, "orientation": 6, "digits": 30, "mnist": 15}
#: L2 radius (in [0, 1] pixel units) at which robustness is measured when not trained for.
DEFAULT_EPS: dict[str, float] = {"shapes": 1.0, "orientation": 1.0, "digits": 1.0, "mnist": 1.5}
EVAL_SIZE = 500
TRAIN_PGD_STEPS = 2
EVAL_PGD_STEPS = 10


@dataclass
class TrainConfig:
    """Everything that determines a training run."""

    dataset: str
    arch: str = "resnet"
    robust_eps: float = 0.0
    epochs: int | None = None
    n_train: int | None = None
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0
    init: str | None = None
    pgd_steps: int = TRAIN_PGD_STEPS
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.dataset not in data.DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; known: {', '.join(data.DATASETS)}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if self.robust_eps < 0:
            raise ValueError(f"the robust radius must be >= 0, got {self.robust_eps}")
        if self.pgd_steps < 1:
            raise ValueError(f"the PGD steps must be >= 1, got {self.pgd_steps}")
        if self.noise < 0:
            raise ValueError(f"the noise level must be >= 0, got {self.noise}")
        if self.arch == "knn" and (self.robust_eps or self.noise or self.init):
            raise ValueError("a k-nearest-neighbour model is not trained: no --robust, --noise or --init")
        if self.epochs is None:
            self.epochs = DEFAULT_EPOCHS[self.dataset]


def model_args(arch: str, side: int) -> dict:
    """The arguments that shrink ``arch``; ``img_size: None`` means the data set's side."""
    _, kwargs = ARCHITECTURES[arch]
    return {k: (side if k == "img_size" and v is None else v) for k, v in kwargs.items()}


def build(arch: str, num_classes: int, channels: int = 3, side: int = 32, **extra: object) -> nn.Module:
    """A freshly initialised network of architecture ``arch`` (see :data:`ARCHITECTURES`); ``extra``:
    more arguments (the k-nearest-neighbour classifier's ``n_train``)."""
    name, _ = ARCHITECTURES[arch]
    return timm.create_model(
        name, num_classes=num_classes, in_chans=channels, **model_args(arch, side), **extra
    )


def _normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return (MEAN,) * channels, (STD,) * channels


def _initial(config: TrainConfig, num_classes: int) -> nn.Module:
    """The network saved in ``config.init`` (a folder :func:`save` wrote), to train further."""
    from morphlib.zoo.loaders import load_timm_folder

    net = load_timm_folder(Path(config.init), num_classes).float()
    expected = ARCHITECTURES[config.arch][0]
    if net.pretrained_cfg.get("architecture") != expected:
        raise ValueError(f"--init {config.init} is not a {config.arch} ({expected}) model")
    return net


def _shift(images: torch.Tensor, generator: torch.Generator, pad: int = 3) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels (reflect-padded crop), one shift per batch."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (pad,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return padded[..., dy : dy + h, dx : dx + w]


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` that ``model`` classifies as ``labels``."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(images[start : start + batch_size])
            correct += (logits.argmax(1) == labels[start : start + batch_size]).sum().item()
    return correct / len(images)


def train(config: TrainConfig, log: Callable[[str], object] = print) -> nn.Sequential:
    """Train a classifier as ``config`` says, logging progress once per epoch.

    Returns
    -------
    nn.Sequential
        ``Preprocess`` followed by the network (``model[1]``), in eval mode.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    images, labels, names = data.load(config.dataset, "train", n=config.n_train, seed=config.seed)
    side, channels = data.IMAGE_SIZE[config.dataset], data.CHANNELS[config.dataset]
    if config.arch == "knn":  # nothing to optimise: the training images are the model
        knn = build("knn", len(names), channels, side, n_train=len(images))
        assert isinstance(knn, PixelKNN)
        log(f"storing {len(images)} {config.dataset} training images for a {knn.k}-nearest-neighbour model")
        preprocess = Preprocess((side, side), *_normalisation(channels))
        return nn.Sequential(preprocess, knn.fit(images, labels)).eval()
    net = (
        build(config.arch, len(names), channels, side)
        if config.init is None
        else _initial(config, len(names))
    )
    model = nn.Sequential(Preprocess((side, side), *_normalisation(channels)), net)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(images) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch, pct_start=0.25
    )
    log(
        f"training {config.arch} on {config.dataset} ({len(images)} images, {config.epochs} epochs"
        + (f", L2 PGD eps={config.robust_eps}, {config.pgd_steps} steps" if config.robust_eps else "")
        + (f", Gaussian noise sigma={config.noise}" if config.noise else "")
        + ")"
    )
    for epoch in range(config.epochs):
        start, total_loss, correct = time.time(), 0.0, 0
        # Ramp the adversarial radius up over the first half of training: easier to optimise.
        eps = config.robust_eps * min(1.0, (epoch + 1) / max(1, config.epochs // 2))
        order = torch.randperm(len(images), generator=generator)
        for batch in order.split(config.batch_size):
            if len(batch) < 2:  # batch norm cannot train on a single image
                continue
            x, y = _shift(images[batch], generator), labels[batch]
            if config.noise:  # the coarse shape survives, the fine pixels do not
                x = (x + config.noise * torch.randn(x.shape, generator=generator)).clamp(0, 1)
            if eps > 0:
                model.eval()  # attack the model as it will be used, without updating BN statistics
                x = pgd_l2(model, x, y, eps, steps=config.pgd_steps, generator=generator)
            model.train()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            correct += (logits.argmax(1) == y).sum().item()
        log(
            f"epoch {epoch + 1}/{config.epochs}  loss {total_loss / len(images):.4f}  "
            f"train accuracy {correct / len(images):.3f}  ({time.time() - start:.0f} s)"
        )
    model.eval()
    return model


def evaluate(model: nn.Module, config: TrainConfig) -> dict:
    """Clean and L2-PGD accuracy on a test split the run never saw (clean only for a network
    without a gradient to attack along, the k-nearest-neighbour classifier)."""
    n = None if config.dataset in ("digits", "mnist") else EVAL_SIZE
    images, labels, _ = data.load(config.dataset, "test", n=n, seed=config.seed)
    clean = {"clean_accuracy": round(accuracy(model, images, labels), 4), "eval_images": len(images)}
    if getattr(model[1], "differentiable", True) is False:
        return {**clean, "config": asdict(config)}
    eps = config.robust_eps or DEFAULT_EPS[config.dataset]
    return {
        "clean_accuracy": clean["clean_accuracy"],
        "robust_accuracy": round(robust_accuracy(model, images, labels, eps, steps=EVAL_PGD_STEPS), 4),
        "eval_eps": eps,
        "eval_images": len(images),
        "eval_pgd_steps": EVAL_PGD_STEPS,
        "config": asdict(config),
    }


def save(model: nn.Module, metrics: dict, out: Path, config: TrainConfig) -> None:
    """Write ``model`` in timm's Hugging Face layout (float16 weights) plus ``metrics.json``."""
    net = copy.deepcopy(model[1]).half()  # a k-nearest-neighbour one's uint8 images stay as they are
    label_names = data.LABEL_NAMES[config.dataset]
    side, channels = data.IMAGE_SIZE[config.dataset], data.CHANNELS[config.dataset]
    mean, std = _normalisation(channels)
    args = model_args(config.arch, side)
    if isinstance(net, PixelKNN):
        args["n_train"] = net.train_images.shape[0]
    timm.models.save_for_hf(
        net,
        str(out),
        model_config={"label_names": label_names},
        model_args=args,
        safe_serialization=True,
        data_config={"input_size": (channels, side, side), "mean": mean, "std": std, "crop_pct": 1.0},
    )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def _parse_robust(text: str) -> float:
    norm, _, eps = text.partition(":")
    if norm.lower() != "l2" or not eps:
        raise ValueError(f"--robust takes 'l2:EPS' (e.g. l2:1.0), got {text!r}")
    return float(eps)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(
        dataset=args.dataset,
        arch=args.arch,
        robust_eps=_parse_robust(args.robust) if args.robust else 0.0,
        epochs=args.epochs,
        n_train=args.n_train,
        seed=args.seed,
        lr=args.lr,
        init=args.init,
        pgd_steps=args.pgd_steps,
        noise=args.noise,
    )
    model = train(config)
    metrics = evaluate(model, config)
    print(
        f"test accuracy {metrics['clean_accuracy']:.4f}"
        + (
            f"  robust accuracy (L2 PGD eps={metrics['eval_eps']}, {EVAL_PGD_STEPS} steps) "
            f"{metrics['robust_accuracy']:.4f}"
            if "robust_accuracy" in metrics
            else ""
        )
    )
    out = Path(args.out) if args.out else Path("assets") / _default_name(config)
    save(model, metrics, out, config)
    print(f"wrote {out}/model.safetensors, config.json, metrics.json")
    return 0


def _default_name(config: TrainConfig) -> str:
    role = {"resnet": "cnn", "effnet": "judge"}.get(config.arch, f"judge-{config.arch}")
    return f"{config.dataset}-{role}" + ("-robust" if config.robust_eps else "")
