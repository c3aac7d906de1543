"""Do morphs toward another orientation turn the stripes? Measured on the ``orientation`` test set.

For each test image, a 16-frame morph toward the next orientation (45 degrees on) through
the bundled ``orientation-cnn-robust``, per edit family and regime at the same raw
amplification.  Per (family, regime) the script reports the median turn toward the target
(structure-tensor orientation, :func:`morphlib.metrics.turn_toward`), how many morphs turned
toward it, the target probability at the last frame, the median L2 distance, and the local
coherence of the last frame relative to the input (1: as striped as before; a plaid of two
orientations scores lower), and how much of the spectral energy share of the source's and
of the target's orientation the last frame has, relative to the input.  It writes
``turns.md`` and a picture of a few morphs, ``turns.png``, to the output folder.

    python scripts/orientation_turns.py [--images 24] [--out reports/orientation]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from morphlib import MorphConfig, Strength, morph  # noqa: E402
from morphlib.data import load as load_data  # noqa: E402
from morphlib.metrics import local_coherence, orientation_shares, turn_toward  # noqa: E402
from morphlib.zoo import load as load_model  # noqa: E402

MODEL = "orientation-cnn-robust"
FRAMES = 16
# Raw amplification of the last frame: radians of phase for the phase families, pixel value
# for pixel edits (the largest single parameter change, see morphlib.morph).
ALPHA = {"csp-phase": 32.0, "csp-joint": 32.0, "fourier-phase": 32.0, "pixel": 1.0}
REGIMES = ("frozen", "persistent")
PICTURED = ("csp-phase", "pixel")  # families shown in turns.png, persistent regime


def orientation_share(image: torch.Tensor, degrees: float) -> float:
    """Share of the image's spectral energy in stripes within 22.5 degrees of ``degrees``."""
    return float(orientation_shares(image[None], [degrees])[0, 0])


def measure(model, images, labels, names, family: str, regime: str) -> tuple[dict, list]:
    turns, probs, l2s, coherence, kept, gained, shown = [], [], [], [], [], [], []
    for image, label in zip(images, labels.tolist(), strict=True):
        target = (label + 1) % len(names)
        start, goal = (float(names[k].split()[0]) for k in (label, target))
        r = morph(
            model,
            image,
            target,
            frames=FRAMES,
            progress=False,
            config=MorphConfig(family=family, regime=regime),
            strength=Strength.amplification(ALPHA[family]),
        )
        turns.append(turn_toward(r.frames[0], r.frames[-1], goal))
        probs.append(float(r.target_probs[-1]))
        l2s.append(float(r.l2[-1]))
        coherence.append(local_coherence(r.frames[-1]) / local_coherence(r.frames[0]))
        kept.append(orientation_share(r.frames[-1], start) / orientation_share(r.frames[0], start))
        gained.append(orientation_share(r.frames[-1], goal) / orientation_share(r.frames[0], goal))
        shown.append(r.frames)
    row = dict(
        family=family,
        regime=regime,
        alpha=ALPHA[family],
        turn=statistics.median(turns),
        toward=sum(t > 0 for t in turns),
        n=len(turns),
        p_target=statistics.mean(probs),
        l2=statistics.median(l2s),
        coherence=statistics.median(coherence),
        kept=statistics.median(kept),
        gained=statistics.median(gained),
    )
    return row, shown


def picture(rows_of_frames: dict[str, list], count: int, path: Path) -> None:
    """One row per image: every third frame of each pictured family, side by side."""
    picks = list(range(0, FRAMES, 3))
    lines = []
    for i in range(count):
        strips = [torch.cat([rows_of_frames[f][i][k] for k in picks], dim=-1) for f in PICTURED]
        gap = torch.ones(3, strips[0].shape[-2], 8)
        lines.append(torch.cat([strips[0], gap, strips[1]], dim=-1))
    grid = torch.cat(lines, dim=-2).clamp(0, 1)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    Image.fromarray(array).resize((grid.shape[-1] * 2, grid.shape[-2] * 2), Image.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="test images (seed 0)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "orientation"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = load_model(MODEL)
    images, labels, names = load_data("orientation", split="test", n=args.images, seed=0)
    rows, pictured = [], {}
    start = time.perf_counter()
    for regime in REGIMES:
        for family in ALPHA:
            row, frames = measure(model, images, labels, names, family, regime)
            rows.append(row)
            print(
                f"{regime:10s} {family:13s} turn {row['turn']:+6.1f}  toward {row['toward']}/{row['n']}",
                flush=True,
            )
            if regime == "persistent" and family in PICTURED:
                pictured[family] = frames
    picture(pictured, min(4, args.images), out / "turns.png")
    lines = [
        "# Do morphs turn the stripes?",
        "",
        f"`python scripts/orientation_turns.py --images {args.images}`: {args.images} `orientation` test "
        f"images (seed 0), each morphed toward the next orientation (45 degrees on) through `{MODEL}`, "
        f"{FRAMES} frames, at a fixed raw amplification *alpha* (radians of phase; pixel value for "
        "`pixel`). *turn*: how many degrees closer the last frame's structure-tensor orientation is to "
        "the target's than the input's (median); *toward*: morphs that turned toward the target; "
        "*coherence*: local coherence of the last frame over the input's (median; a plaid of two "
        "orientations scores lower); *source share*, *target share*: the last frame's share of "
        "spectral energy in stripes within 22.5 degrees of the source's (target's) orientation, "
        f"over the input's (median). Took {time.perf_counter() - start:.0f} s.",
        "",
        "| regime | family | alpha | turn (deg) | toward | mean p(target) | median L2 | coherence "
        "| source share | target share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['regime']} | {r['family']} | {r['alpha']:g} | {r['turn']:+.1f} | {r['toward']}/{r['n']} "
            f"| {r['p_target']:.2f} | {r['l2']:.2f} | {r['coherence']:.2f} "
            f"| {r['kept']:.2f}x | {r['gained']:.2f}x |"
        )
    lines += [
        "",
        f"`turns.png`: persistent morphs of the first images, every third frame; left {PICTURED[0]}, "
        f"right {PICTURED[1]}.",
        "",
    ]
    (out / "turns.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
