"""End-to-end cost of a 16-frame frozen ``csp-phase`` morph against the classifier's own cost.

For each model, in the same run and interleaved (so that machine load hits all alike):

* **classifier**: the unavoidable work of any gradient morph: one forward + backward pass
  for the input gradient of one image, plus a forward pass scoring the 15 new frames;
* **morph (budget)**: ``morph(model, image, target)`` with the default L2 budget
  (includes the analysis, the budget search and the rendering);
* **morph (alpha)**: the same with a fixed amplification (no budget search);
* **re-render**: ``Gradient.frames(alpha, 16)`` from the cached gradient: synthesis only,
  no scoring, what the app does when a slider moves.

*floor* = (classifier + re-render) / classifier: what a morph costs at least, since it must
both score its frames and synthesise them, before any analysis, budget search or backward
pass through the synthesis.

Times are medians over ``--repeats`` runs (after one warm-up).  Run::

    python benchmarks/bench_morph.py [--repeats 5] [--threads N] [--write /tmp/morph.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from morphlib import Strength, gradient, morph  # noqa: E402
from morphlib.data import load as load_data

FRAMES = 16


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def classifier_cost(model: torch.nn.Module, image: torch.Tensor, target: int) -> None:
    """One input gradient plus scoring FRAMES − 1 frames: what any morph must spend in the model."""
    x = image[None].clone().requires_grad_(True)
    loss = -torch.log_softmax(model(x), dim=-1)[0, target]
    torch.autograd.grad(loss, x)
    with torch.no_grad():
        model(image[None].expand(FRAMES - 1, -1, -1, -1).contiguous())


def cases() -> list[tuple[str, torch.nn.Module, torch.Tensor, int]]:
    """(name, model, image, target) for timm ResNet-50 and the bundled models that are present."""
    import timm

    torch.manual_seed(0)
    resnet = timm.create_model("resnet50", pretrained=False).eval()
    for p in resnet.parameters():
        p.requires_grad_(False)
    shapes, _, _ = load_data("shapes", split="test", n=1, seed=0)
    photo = F.interpolate(shapes, size=(224, 224), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    out = [("timm resnet50 (random weights)", resnet, photo, 207)]
    try:
        from morphlib.zoo import list_models, load
    except ImportError:  # pragma: no cover - zoo not merged
        return out
    for status in list_models():
        entry = status.entry
        if status.location != "bundled" or not status.available or "judge" in entry.id:
            continue
        images, labels, _ = load_data(entry.dataset, split="test", n=1, seed=0)
        model = load(entry.id)
        out.append((entry.id, model, images[0], (int(labels[0]) + 1) % len(model.labels)))
    return out


def bench(name, model, image, target, repeats: int) -> dict:
    g = gradient(model, image, target)
    budget_alpha = g.alpha_for_budget(0.05 * image.numel() ** 0.5)
    runs: dict[str, list[float]] = {"classifier": [], "morph": [], "morph_alpha": [], "rerender": []}
    steps = {
        "classifier": lambda: classifier_cost(model, image, target),
        "morph": lambda: morph(model, image, target, frames=FRAMES),
        "morph_alpha": lambda: morph(
            model, image, target, frames=FRAMES, strength=Strength.amplification(budget_alpha)
        ),
        "rerender": lambda: g.frames(budget_alpha, FRAMES),
    }
    for fn in steps.values():  # warm-up
        fn()
    for _ in range(repeats):
        for key, fn in steps.items():
            runs[key].append(timed(fn))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return dict(
        name=name,
        size="x".join(str(s) for s in image.shape),
        **med,
        ratio=med["morph"] / med["classifier"],
        ratio_alpha=med["morph_alpha"] / med["classifier"],
        rerender_share=med["rerender"] / med["morph"],
        floor=(med["classifier"] + med["rerender"]) / med["classifier"],
    )


def table(rows: list[dict]) -> str:
    head = (
        "| model | image | classifier (s) | morph, budget (s) | ratio | morph, alpha (s) | ratio "
        "| re-render 16 (s) | re-render / morph | floor |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['size']} | {r['classifier']:.3f} | {r['morph']:.3f} | {r['ratio']:.2f}x "
            f"| {r['morph_alpha']:.3f} | {r['ratio_alpha']:.2f}x | {r['rerender']:.3f} "
            f"| {100 * r['rerender_share']:.0f} % | {r['floor']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--write", default=None, help="also write the table (markdown) to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = [bench(*case, repeats=args.repeats) for case in cases()]
    load_after = os.getloadavg()[0]
    info = (
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; "
        f"load average {load_before:.1f} before, {load_after:.1f} after; medians of {args.repeats} runs"
    )
    text = table(rows)
    print(info)
    print(text)
    if args.write:
        with open(args.write, "w") as fh:
            fh.write(
                "# Morph engine benchmark\n\n"
                "16-frame frozen `csp-phase` morph (`benchmarks/bench_morph.py`). *classifier* is the "
                "unavoidable cost measured in the same run: one forward + backward pass for the input "
                "gradient and one forward pass scoring the 15 new frames. *ratio* = morph / classifier "
                "(goal <= 1.25x); *re-render* = 16 frames from the cached gradient, synthesis only "
                "(goal <= 25 % of the morph); *floor* = (classifier + re-render) / classifier, the "
                "least a morph that scores and synthesises its frames can cost.\n\n"
                f"{info}\n\n{text}\n"
            )


if __name__ == "__main__":
    main()
