"""morphlib atlas IMAGE --model ID --out DIR: how far the image lies from every other class.

One batch walks from the image toward every other class (for a label set of more than 20
classes, the model's 8 next choices; or the classes given with --targets) along the recommended
path, each row stopping where its class first becomes the top-1; the distance is that frame's
L2 distance from the image ("> cap" where it does not happen within --cap-rms).  --plane A,B
also maps the top-1 class over the plane spanned, in the edit parameters, by the gradient
directions toward A and B.  IMAGE is read as by `morphlib morph` (a file, or data:SET:INDEX).
docs/atlas.md explains what the distances and the plane are, and what they are not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .morph import (
    BANDWIDTHS,
    DEFAULT_CAP_RMS,
    DEFAULT_FAMILY,
    DEFAULT_REGIME,
    DEFAULT_SMOOTH,
    FAMILIES,
    REGIMES,
)

#: The plane's grid points per side (morphlib.atlas.GRID; tests/test_cli.py checks they agree).
DEFAULT_GRID = 15


def _pair(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two classes as A,B (e.g. 3,8), got {text!r}")
    return parts[0], parts[1]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _classes(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if not parts:
        raise argparse.ArgumentTypeError("give at least one class")
    return parts


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from . import HelpFormatter

    p = subparsers.add_parser(
        "atlas",
        help="distances from an image to every other class, and a plane of decision regions",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("image", help="image file, or data:SET:INDEX (a test image of a bundled data set)")
    p.add_argument("--model", required=True, help="zoo model id (see zoo.yaml), or hf-hub:ORG/NAME")
    p.add_argument("--zoo", type=Path, help="a zoo manifest of your own (default: the bundled zoo.yaml)")
    p.add_argument(
        "--out", type=Path, help="directory for distances.png, frames.png, atlas.json (and the plane)"
    )
    p.add_argument(
        "--targets", type=_classes, default=None, help="comma-separated classes (default: all others)"
    )
    p.add_argument(
        "--cap-rms", type=_positive, default=DEFAULT_CAP_RMS, help="search cap, an RMS change per value"
    )
    p.add_argument(
        "--plane", type=_pair, default=None, metavar="A,B", help="also map the plane toward A and B"
    )
    p.add_argument("--grid", type=int, default=DEFAULT_GRID, help="the plane's points per side (odd)")
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=FAMILIES, help="edit family")
    p.add_argument("--regime", default=DEFAULT_REGIME, choices=REGIMES, help="path regime")
    p.add_argument(
        "--smooth-sigma", type=float, default=DEFAULT_SMOOTH, help="amplitude-weighted phase smoothing, px"
    )
    p.add_argument("--phase-cap", type=_positive, help="largest phase increment, radians (default: none)")
    p.add_argument("--bandwidth", default="octave", choices=BANDWIDTHS, help="CSP bandwidth")
    p.add_argument("--full-size", action="store_true", help="use the image at its own size, not the model's")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from morphlib.atlas import atlas, plane
    from morphlib.config import RECOMMENDED, PyramidConfig
    from morphlib.zoo import load

    from .morph import read_image

    config = RECOMMENDED.replace(
        family=args.family,
        regime=args.regime,
        smooth_sigma=args.smooth_sigma,
        phase_cap=args.phase_cap,
        pyramid=PyramidConfig(bandwidth=args.bandwidth),
    )
    model = load(args.model, manifest=args.zoo) if args.zoo else load(args.model)
    size = None if args.full_size or getattr(model, "entry", None) is None else tuple(model.entry.input_size)
    image, notes = read_image(args.image, size)
    for note in notes:
        print(f"note: {note}")
    found = atlas(model, image, args.targets, config, cap_rms=args.cap_rms)
    print(
        f"{args.model}: {found.labels[found.source]} (p = {float(found.probs[found.source]):.3f}); "
        f"{config.family}, {config.regime}, top-1 goal, cap L2 {found.cap:.3g} (one step {found.step:.3g})"
    )
    print(found.table())
    written = found.save(args.out) if args.out is not None else {}
    if args.plane is not None:
        mapped = plane(model, image, *args.plane, n=args.grid, config=config, cap_rms=args.cap_rms)
        regions = ", ".join(f"{label} {count}" for label, count in mapped.regions().items())
        print(
            f"plane toward {mapped.labels[mapped.a]} and {mapped.labels[mapped.b]} ({mapped.n}x{mapped.n}): "
            f"centre {mapped.labels[mapped.centre]}; grid points per top-1 class: {regions}"
        )
        if args.out is not None:
            written.update(mapped.save(args.out))
    if written:
        print(f"wrote {', '.join(sorted(p.name for p in written.values()))} to {args.out}")
    return 0
