"""Robust accuracy of saved bundled models at several L2 radii, stored in their metrics.json.

Usage: python scripts/robust_eval.py assets/mnist-cnn-robust [more folders] [--eps 1.5 2 3] [--steps 20]
       python scripts/robust_eval.py assets/*-cnn* --check-images 200

Each folder is one that ``python -m morphlib train`` wrote; its float16 weights are
attacked as shipped (in float32), on the test split its metrics.json was measured on
(the whole split for digits and MNIST), by L2 PGD from morphlib.attacks (seeded). The
numbers go under ``robust_curve`` in the folder's metrics.json:
``{pgd_steps, eps: [...], accuracy: [...], clean}`` (clean: the shipped weights' accuracy).

With ``--check-images N`` it measures instead the figure the tests recompute
(tests/test_drivers.py): accuracy under the same attack at the model's own radius (its
training radius, else the one its metrics.json was measured at) on the first N images
of that split, stored as ``robust_check: {eps, pgd_steps, images, accuracy}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morphlib import data  # noqa: E402
from morphlib.attacks import robust_accuracy  # noqa: E402
from morphlib.train import EVAL_SIZE, accuracy  # noqa: E402
from morphlib.zoo.loaders import load_timm_folder  # noqa: E402
from morphlib.zoo.model import Preprocess  # noqa: E402


def load_folder(folder: Path, dataset: str) -> nn.Module:
    """The saved network behind the preprocessing its config.json names, in float32, eval mode."""
    net = load_timm_folder(folder, len(data.LABEL_NAMES[dataset])).float()
    cfg = net.pretrained_cfg
    return nn.Sequential(Preprocess(cfg["input_size"][1:], cfg["mean"], cfg["std"]), net).eval()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--eps", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--check-images", type=int, help="only the tests' figure, on the first N images")
    args = parser.parse_args()
    for folder in args.folders:
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text())
        config = metrics["config"]
        dataset = config["dataset"]
        n = None if dataset in ("digits", "mnist") else EVAL_SIZE
        images, labels, _ = data.load(dataset, "test", n=n, seed=config["seed"])
        model = load_folder(folder, dataset)
        start = time.process_time()
        if args.check_images:
            eps = config["robust_eps"] or metrics["eval_eps"]
            x, y = images[: args.check_images], labels[: args.check_images]
            accuracy_at_eps = round(robust_accuracy(model, x, y, eps, steps=args.steps), 4)
            metrics["robust_check"] = {
                "eps": eps,
                "pgd_steps": args.steps,
                "images": len(x),
                "accuracy": accuracy_at_eps,
            }
            metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
            seconds = time.process_time() - start
            print(
                f"{folder}: first {len(x)} images, {args.steps}-step L2 PGD at eps {eps:g}: "
                f"{accuracy_at_eps:.4f}  ({seconds:.0f} CPU s)"
            )
            continue
        clean = round(accuracy(model, images, labels), 4)
        robust = [round(robust_accuracy(model, images, labels, eps, steps=args.steps), 4) for eps in args.eps]
        metrics["robust_curve"] = {
            "pgd_steps": args.steps,
            "eps": args.eps,
            "accuracy": robust,
            "clean": clean,
        }
        metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
        table = "  ".join(f"eps {e:g}: {a:.4f}" for e, a in zip(args.eps, robust, strict=True))
        seconds = time.process_time() - start
        print(f"{folder}: clean {clean:.4f}  {args.steps}-step L2 PGD  {table}  ({seconds:.0f} CPU s)")


if __name__ == "__main__":
    main()
