"""morphlib morph IMAGE --model ID --target CLASS: morph an image, print and save it.

IMAGE is an image file (PNG, JPEG, WebP, GIF, BMP, TIFF; decoded as the app decodes uploads)
or data:SET:INDEX for image INDEX of the test split (seed 0) of a bundled data set, e.g.
data:mnist:0.  The image is fitted to the model's input size (cover, centre crop), as the
app does, unless --full-size is given.

Without --budget or --alpha the strength is automatic: the morph stops where the stopping
rule --goal says, searched up to an RMS change of --auto per value.  A rule is written
top-1 (the target becomes the top class), p0.9 (its probability reaches 0.9), top-1+50%
(on past top-1 to 1.5 times that distance), plateau0.01 (once top-1, where p rises by less
than 0.01 a step), margin2 (log-odds margin over the runner-up) or cap (the whole path).
The other defaults (family, regime, smoothing, luma-only) and the rule are the recommended
settings (morphlib.config.RECOMMENDED), chosen by the settings study; docs/method.md explains
each one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The values of the recommended settings shown in --help (morphlib.config holds the real ones;
#: tests/test_cli.py checks that the two agree), so that --help imports no torch.
DEFAULT_FAMILY, DEFAULT_REGIME, DEFAULT_SMOOTH, DEFAULT_LUMA = "csp-joint", "step-local", 1.0, True
DEFAULT_GOAL, DEFAULT_CAP_RMS = "margin3", 0.28
FAMILIES = ("pixel", "fourier-phase", "csp-phase", "csp-joint", "csp-amplitude")
REGIMES = ("frozen", "persistent", "step-local")
LOSSES = ("nll", "margin", "contrast")
BANDWIDTHS = ("octave", "half-octave", "quarter-octave")
POLICIES = ("random", "runner-up")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from . import HelpFormatter

    p = subparsers.add_parser(
        "morph",
        help="morph an image toward a class and save the renders",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("image", help="image file, or data:SET:INDEX (a test image of a bundled data set)")
    p.add_argument(
        "--model",
        required=True,
        help="zoo model id (see zoo.yaml), e.g. mnist-cnn-robust, or a Hub model as hf-hub:ORG/NAME",
    )
    p.add_argument("--zoo", type=Path, help="a zoo manifest of your own (default: the bundled zoo.yaml)")
    p.add_argument(
        "--target",
        required=True,
        help="target class: label name or index, or a policy: runner-up (the model's next choice after "
        "the source) or random (another class, seeded by --seed)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --target random")
    p.add_argument("--source", default=None, help="source class (default: the model's top-1)")
    p.add_argument("--family", default=DEFAULT_FAMILY, choices=FAMILIES, help="edit family")
    p.add_argument("--regime", default=DEFAULT_REGIME, choices=REGIMES, help="path regime")
    p.add_argument("--frames", type=int, default=16, help="frames of the morph (auto strength: at most)")
    strength = p.add_mutually_exclusive_group()
    strength.add_argument(
        "--budget", type=_positive_float, help="L2 distance of the last frame from the input"
    )
    strength.add_argument(
        "--alpha", type=_positive_float, help="amplification of the last frame (the largest parameter change)"
    )
    strength.add_argument(
        "--auto",
        type=_positive_float,
        nargs="?",
        const=DEFAULT_CAP_RMS,
        default=DEFAULT_CAP_RMS,
        metavar="MAX_RMS",
        help="auto strength (used when no --budget or --alpha is given): its search cap, an RMS change "
        "per value",
    )
    p.add_argument(
        "--goal",
        "--goal-prob",
        default=DEFAULT_GOAL,
        help="auto strength's stopping rule: top-1, pP, top-1+N%%, plateauR, marginM or cap (a bare "
        "probability P means pP, 0 means top-1)",
    )
    p.add_argument("--loss", default="nll", choices=LOSSES, help="class loss")
    p.add_argument(
        "--luma-only",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_LUMA,
        help="edit only the YIQ luma of a colour image, keep its chroma (no new colour)",
    )
    p.add_argument(
        "--phase-cap", type=_positive_float, help="largest phase increment, radians (default: none)"
    )
    p.add_argument(
        "--smooth-sigma",
        type=float,
        default=DEFAULT_SMOOTH,
        help="amplitude-weighted smoothing of the phase, px (0: none)",
    )
    p.add_argument(
        "--orientations", type=int, default=None, help="CSP orientations (default: 4, or 8 sub-octave)"
    )
    p.add_argument("--bandwidth", default="octave", choices=BANDWIDTHS, help="CSP bandwidth")
    p.add_argument("--scales", default="auto", help="CSP octaves, or auto")
    p.add_argument(
        "--full-size", action="store_true", help="morph the image at its own size, not the model's"
    )
    p.add_argument("--out", type=Path, help="directory for frames, GIF, MP4, contact sheet, plot, JSON")
    p.add_argument("--no-video", action="store_true", help="skip the MP4")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second of the GIF and MP4")
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace):
    """The MorphConfig and Strength the arguments describe."""
    from morphlib.config import MorphConfig, PyramidConfig, Strength

    if args.scales != "auto" and not args.scales.isdigit():
        raise ValueError(f"--scales must be a whole number or auto, got {args.scales!r}")
    pyramid = PyramidConfig(
        scales=args.scales if args.scales == "auto" else int(args.scales),
        orientations=args.orientations,
        bandwidth=args.bandwidth,
    )
    config = MorphConfig(
        family=args.family,
        regime=args.regime,
        loss=args.loss,
        luma_only=args.luma_only,
        phase_cap=args.phase_cap,
        smooth_sigma=args.smooth_sigma,
        pyramid=pyramid,
    )
    if args.budget is not None:
        return config, Strength.budget(args.budget)
    if args.alpha is not None:
        return config, Strength.amplification(args.alpha)
    return config, Strength.auto(goal=args.goal, cap_rms=args.auto)


def read_image(spec: str, size: tuple[int, int] | None):
    """An image ``(C, H, W)`` in ``[0, 1]`` from a file (fitted to ``size`` when given) or data:SET:INDEX,
    with notes on what was done to it."""
    from morphlib.imaging import fit_to_size, load_image

    if spec.startswith("data:"):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"expected data:SET:INDEX (e.g. data:mnist:3), got {spec!r}")
        from morphlib.data import load as load_data

        index = int(parts[2])
        images, _, _ = load_data(parts[1], split="test", n=index + 1, seed=0)
        return images[index], []
    if not Path(spec).is_file():
        raise ValueError(f"no image file {spec!r}; give a PNG/JPEG path or data:SET:INDEX")
    loaded = load_image(spec, fit_to=size)  # a large file decodes reduced, never at full size
    notes = list(loaded.notes)
    image = loaded.image
    if size is not None:
        image, note = fit_to_size(image, size)
        notes += [note] if note else []
    return image, notes


def run(args: argparse.Namespace) -> int:
    from morphlib.engine import morph
    from morphlib.zoo import load

    config, strength = config_from(args)
    model = load(args.model, manifest=args.zoo) if args.zoo else load(args.model)
    size = (
        None if args.full_size else tuple(model.entry.input_size) if getattr(model, "entry", None) else None
    )
    image, notes = read_image(args.image, size)
    domain = model.domain_note(image) if hasattr(model, "domain_note") else None
    for note in [*notes, *([f"out of the model's domain: {domain}"] if domain else [])]:
        print(f"note: {note}")
    target = _target(model, image, args)
    result = morph(model, image, target, config, strength, frames=args.frames, source=args.source)
    if result.auto is not None:
        print(f"auto strength: {result.auto.message}")
    p = result.params
    print(
        f"{args.model}: {result.labels[result.source]} -> {result.labels[result.target]}  "
        f"family={p['family']} regime={p['regime']} loss={p['loss']} "
        f"alpha_max={p['alpha_max']:.4g} L2={float(result.l2[-1]):.4g}"
    )
    print(result.table())
    if args.out is not None:
        paths = result.save(args.out, fps=args.fps, video=not args.no_video)
        print(f"wrote {', '.join(sorted(k for k in paths))} to {args.out}")
    return 0


def _target(model, image, args: argparse.Namespace) -> int | str:
    """The --target class: a label or index as given, or picked by a policy of morphlib.labels."""
    import numpy as np
    import torch

    from morphlib.labels import class_names, is_label, pick_target, resolve_class

    if is_label(model, args.target) or args.target not in POLICIES:
        return args.target
    with torch.no_grad():
        logits = model(image[None].to(next(model.parameters()).device))[0]
    labels = class_names(model, logits.numel())
    source = int(logits.argmax()) if args.source is None else resolve_class(args.source, labels)
    return pick_target(args.target, logits, source, np.random.default_rng(args.seed))
