"""Cost of a decision-boundary atlas (9 classes, one batch) against one single default morph.

For each of ``--digits`` real MNIST test digits, with ``mnist-cnn-robust``, in the same run and
interleaved (so that machine load hits all alike):

* **single morph**: ``morph(model, image, runner_up, RECOMMENDED, RECOMMENDED_STRENGTH)``, the
  app's and the CLI's default (csp-joint, step-local, auto strength to its stopping rule, a
  log-odds margin of 3, 16 frames);
* **atlas**: ``atlas(model, image)``: the 9 other classes walked in one batch to each one's first
  top-1, up to the cap (RMS 0.28), 24 equal L2 steps at most;
* **plane 15x15**: ``plane(model, image, a, b, n=15)`` toward the two nearest classes: two
  gradients (one batched backward pass), then 225 syntheses and forward passes, batched.

The goal (issue 24) is atlas <= 3x single.  Times are medians over ``--repeats`` runs (after one
warm-up).  Run::

    python benchmarks/bench_atlas.py [--digits 3] [--repeats 5] [--threads N] [--write /tmp/atlas.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from morphlib import RECOMMENDED, RECOMMENDED_STRENGTH, morph  # noqa: E402
from morphlib.atlas import atlas, plane  # noqa: E402
from morphlib.data import load as load_data  # noqa: E402
from morphlib.zoo import load  # noqa: E402

MODEL = "mnist-cnn-robust"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(model, image: torch.Tensor, repeats: int) -> tuple[str, int, int, dict[str, float]]:
    """The runner-up's label, classes reached, the atlas's steps, and median seconds per call."""
    with torch.no_grad():
        runner_up = int(model(image[None])[0].argsort(descending=True)[1])

    def single() -> object:
        return morph(model, image, runner_up, RECOMMENDED, RECOMMENDED_STRENGTH, progress=False)

    def whole() -> object:
        return atlas(model, image)

    _, first = timed(whole)  # warm-up, and the plane's two nearest classes
    near = [r.label for r in first.ranked()[:2]]

    def slice_() -> object:
        return plane(model, image, near[0], near[1], n=15)

    timed(single)
    timed(slice_)
    times: dict[str, list[float]] = {"single": [], "atlas": [], "plane": []}
    for _ in range(repeats):
        for name, fn in (("single", single), ("atlas", whole), ("plane", slice_)):
            times[name].append(timed(fn)[0])
    reached = sum(r.reached for r in first.routes)
    steps = max(len(r.l2) for r in first.routes) - 1
    return first.labels[runner_up], reached, steps, {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write", type=Path, default=None, help="also write the table (Markdown) here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load(MODEL)
    images, labels, _ = load_data("mnist", split="test", n=args.digits, seed=0)
    rows = [(d, int(labels[d]), *measure(model, images[d], args.repeats)) for d in range(args.digits)]
    head = (
        "| digit | class | single morph toward | single (s) | atlas, 9 classes (s) | atlas / single "
        "| classes reached | atlas steps | plane 15x15 (s) |"
    )
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d, label, toward, reached, steps, med in rows:
        lines.append(
            f"| {d} | {label} | {toward} | {med['single']:.3f} | {med['atlas']:.3f} "
            f"| {med['atlas'] / med['single']:.2f}x | {reached}/9 | {steps} | {med['plane']:.3f} |"
        )
    ratio = statistics.median(med["atlas"] / med["single"] for *_, med in rows)
    lines.append("")
    lines.append(f"Median atlas / single: {ratio:.2f}x (goal: <= 3x).")
    text = "\n".join(lines)
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    print(f"{MODEL}, {args.repeats} repeats, {machine}\n")
    print(text)
    if args.write is not None:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
