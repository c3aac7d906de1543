"""Time the complex steerable pyramid against plenoptic's and pyrtools' in the same run.

For each input size, every implementation analyses, synthesises, and does both, on the
same random image; the table reports the median over ``--reps`` runs after one warm-up,
runs interleaved so that load on the machine hits all peers alike, plus the
reconstruction error and throughput ratios (peer time / our time: above 1 means we are
faster).  Usage::

    python benchmarks/bench_pyramid.py                 # the sizes of the issue, CPU
    python benchmarks/bench_pyramid.py --device cuda   # ours and plenoptic on the GPU
    python benchmarks/bench_pyramid.py --sizes 1x1x256x256 --reps 9
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from morphlib.transforms import SteerablePyramid  # noqa: E402

DEFAULT_SIZES = ["1x1x256x256", "8x3x224x224", "1x3x512x512", "2x3x1024x1024"]


class Peer:
    """One implementation: ``analyze(x)``, ``synthesize(coeffs)``, for a fixed input shape."""

    name: str

    def analyze(self, x): ...

    def synthesize(self, coeffs): ...

    def round_trip(self, x):
        return self.synthesize(self.analyze(x))


class Ours(Peer):
    name = "morphlib"

    def __init__(self, shape, device):
        self.pyr = SteerablePyramid(orientations=4)

    def analyze(self, x):
        return self.pyr.analyze(x)

    def synthesize(self, c):
        return self.pyr.synthesize(c)


class Plenoptic(Peer):
    name = "plenoptic"

    def __init__(self, shape, device):
        import plenoptic as po

        self.pyr = po.process.SteerablePyramidFreq(shape[-2:], order=3, is_complex=True).to(device)

    def analyze(self, x):
        return self.pyr(x)

    def synthesize(self, c):
        return self.pyr.recon_pyr(c)


class Pyrtools(Peer):
    """pyrtools works on one 2-D numpy image at a time: loop over batch and channels."""

    name = "pyrtools"

    def __init__(self, shape, device):
        import pyrtools as pt

        self.cls = pt.pyramids.SteerablePyramidFreq

    def analyze(self, x):
        return [self.cls(img, order=3, is_complex=True) for img in x.reshape(-1, *x.shape[-2:])]

    def synthesize(self, pyrs):
        return np.stack([p.recon_pyr() for p in pyrs])


def elapsed(sync: Callable[[], None], fn: Callable, *args) -> float:
    """Seconds that ``fn(*args)`` takes, device work included."""
    start = time.perf_counter()
    fn(*args)
    sync()
    return time.perf_counter() - start


def rel_err(y, x) -> float:
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y).reshape(x.shape).to(x)
    return ((y - x).norm() / x.norm()).item()


def bench_size(shape, device, reps, with_pyrtools):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=gen).to(device)
    x_np = x.cpu().numpy().astype(np.float64)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    peers = [Ours(shape, device), Plenoptic(shape, device)]
    if with_pyrtools and device.type == "cpu":
        peers.append(Pyrtools(shape, device))
    inputs = {p.name: (x_np if p.name == "pyrtools" else x) for p in peers}

    times = {p.name: {"analyze": [], "synthesize": [], "both": []} for p in peers}
    errors = {}
    with torch.no_grad():
        for p in peers:  # warm-up: builds and caches filters, plans FFTs
            errors[p.name] = rel_err(p.synthesize(p.analyze(inputs[p.name])), x.cpu().double())
        for _ in range(reps):
            for p in peers:
                inp = inputs[p.name]
                coeffs = p.analyze(inp)
                times[p.name]["analyze"].append(elapsed(sync, p.analyze, inp))
                times[p.name]["synthesize"].append(elapsed(sync, p.synthesize, coeffs))
                times[p.name]["both"].append(elapsed(sync, p.round_trip, inp))
    return {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()}, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="BxCxHxW")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-pyrtools", action="store_true", help="skip the (slow, numpy) pyrtools peer")
    args = parser.parse_args()
    device = torch.device(args.device)
    warnings.filterwarnings("ignore")

    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    where = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu}, {torch.get_num_threads()} threads"
    )
    print(f"# CSP benchmark: {where}; torch {torch.__version__}; median of {args.reps} runs, float32")
    print("# order=3 (4 orientations), octave bandwidth, down-sampled, scales='auto'")
    print("# ratio = peer time / morphlib time (higher: morphlib faster)\n")
    print("| size | impl | analyze ms | synthesize ms | both ms | ratio (both) | recon rel. err |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        shape = tuple(int(v) for v in size.lower().split("x"))
        times, errors = bench_size(shape, device, args.reps, not args.no_pyrtools)
        ours = times["morphlib"]["both"]
        for name, t in times.items():
            ratio = t["both"] / ours
            print(
                f"| {size} | {name} | {t['analyze'] * 1e3:.1f} | {t['synthesize'] * 1e3:.1f} | "
                f"{t['both'] * 1e3:.1f} | {ratio:.2f}x | {errors[name]:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
