"""The cost of the app's default morph, now against before the stopping-rule study (issue 21).

*before*: csp-joint on a step-local path, smoothing 1, every channel edited, auto strength to
p(target) >= 0.9 within RMS 0.28 (the default until the study picked a rule).  *now*:
:data:`morphlib.RECOMMENDED` with :data:`morphlib.RECOMMENDED_STRENGTH`.  Both morph the same
image toward the same target with 16 frames, interleaved in one run; medians of ``--repeats``
runs after one warm-up.  Cases: a 224² ResNet-50 (timm, random weights: the network the
``bench_morph.py`` table uses), EfficientNet-Lite0 with its real ImageNet weights on a photo
(scikit-image's cat, toward "tiger cat"), and the bundled MNIST drivers on a test digit.

    python benchmarks/bench_default.py [--repeats 3] [--threads 2] [--write /tmp/default.md]
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
from morphlib import RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, Strength, morph  # noqa: E402

BEFORE = (
    MorphConfig(family="csp-joint", regime="step-local", smooth_sigma=1.0, luma_only=False),
    Strength.auto(goal=0.9, cap_rms=0.28),
)
NOW = (RECOMMENDED, RECOMMENDED_STRENGTH)
FRAMES = 16


def cases() -> list[tuple[str, torch.nn.Module, torch.Tensor, int | str]]:
    import timm

    from morphlib.data import load as load_data
    from morphlib.imaging import fit_to_size, load_image
    from morphlib.zoo import load, wrap

    torch.manual_seed(0)
    net = timm.create_model("resnet50", pretrained=False, num_classes=1000).eval()
    resnet = wrap(net, labels=[str(i) for i in range(1000)], input_size=(224, 224))
    photo = Path(__file__).resolve().parents[1] / "assets" / "examples" / "cat.jpg"
    cat, _ = fit_to_size(load_image(photo).image, (224, 224))
    digits, labels, _ = load_data("mnist", "test", n=1, seed=0)
    out: list[tuple[str, torch.nn.Module, torch.Tensor, int | str]] = [
        ("timm resnet50 (random weights), 224²", resnet, cat, 281),
    ]
    try:
        out.append(("efficientnet-lite0 (ImageNet), cat 224²", load("efficientnet-lite0"), cat, "tiger cat"))
    except Exception as error:  # noqa: BLE001 - the pip package may be absent: say so, go on
        print(f"efficientnet-lite0 left out: {error}", file=sys.stderr)
    for driver in ("mnist-cnn-robust-eps3", "mnist-cnn-robust"):
        out.append((f"{driver}, digit 28²", load(driver), digits[0], (int(labels[0]) + 3) % 10))
    return out


def run(model, image, target, setting) -> tuple[float, float, bool]:
    start = time.perf_counter()
    result = morph(model, image, target, *setting, frames=FRAMES, progress=False)
    seconds = time.perf_counter() - start
    assert result.auto is not None
    return seconds, float(result.l2[-1]), result.auto.reached


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [
        f"CPU: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
        f"torch {torch.__version__}; medians of {args.repeats} runs; now = {NOW[1].describe()}, luma-only "
        f"{NOW[0].luma_only}",
        "",
        "| case | before (s) | now (s) | now / before | before: stop L2, reached | now: stop L2, reached |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, model, image, target in cases():
        timings: dict[str, list[float]] = {"before": [], "now": []}
        ends = {}
        for setting in (BEFORE, NOW):
            run(model, image, target, setting)  # warm-up
        for _ in range(args.repeats):
            for label, setting in (("before", BEFORE), ("now", NOW)):
                seconds, l2, reached = run(model, image, target, setting)
                timings[label].append(seconds)
                ends[label] = f"{l2:.3g}, {'yes' if reached else 'no'}"
        before, now = (statistics.median(timings[k]) for k in ("before", "now"))
        lines.append(
            f"| {name} | {before:.2f} | {now:.2f} | {now / before:.2f}x | {ends['before']} | {ends['now']} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.write:
        Path(args.write).write_text(text + "\n")


if __name__ == "__main__":
    main()
