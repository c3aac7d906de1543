"""morphlib train: seeded CPU training of the small bundled classifiers (morphlib.train does the work)."""

from __future__ import annotations

import argparse

#: The data sets and architectures (morphlib.data.DATASETS and morphlib.train.ARCHITECTURES; tests/test_cli.py
#: checks they agree), here so that --help imports no torch.
DATASETS = ("shapes", "orientation", "digits", "mnist")
ARCHITECTURES = ("resnet", "effnet", "vit", "mlp", "knn")
LR = 3e-3
PGD_STEPS = 2


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train``."""
    from . import HelpFormatter

    p = subparsers.add_parser(
        "train",
        help="train a small bundled classifier",
        description="Seeded CPU training of a tiny timm architecture on a bundled data set, optionally with "
        "L2 PGD adversarial training (--robust l2:EPS); written in timm's Hugging Face layout with "
        "metrics.json beside it.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="resnet",
        help="architecture (mlp: a perceptron on the pixels; knn: 5 nearest neighbours, not trained)",
    )
    p.add_argument("--robust", metavar="l2:EPS", help="L2 PGD adversarial training at radius EPS")
    p.add_argument(
        "--pgd-steps", type=int, default=PGD_STEPS, help="attack steps per batch in robust training"
    )
    p.add_argument(
        "--noise",
        type=float,
        default=0.0,
        metavar="SIGMA",
        help="add Gaussian noise of this standard deviation to the [0, 1] training pixels",
    )
    p.add_argument("--epochs", type=int, help="passes over the training set (default: per data set)")
    p.add_argument("--n-train", type=int, help="training images (default: per data set)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data order and initialisation")
    p.add_argument("--lr", type=float, default=LR, help="peak learning rate (one-cycle schedule)")
    p.add_argument("--init", metavar="FOLDER", help="start from a saved model (to fine-tune it)")
    p.add_argument("--out", help="output folder (default: assets/<dataset>-<role>[-robust])")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from morphlib import train

    return train.run(args)
