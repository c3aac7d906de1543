"""``python -m morphlib morph IMAGE --model ID --target CLASS``: morph an image, print and save it.

IMAGE is an image file (PNG, JPEG, ...) or ``data:SET:INDEX`` for image ``INDEX`` of the test
split (seed 0) of one of :mod:`morphlib.data`'s sets, e.g. ``data:orientation:3``.

Without ``--budget`` or ``--alpha`` the strength is automatic: the morph stops where the
target wins.  The defaults (family, regime, smoothing, goal) are :mod:`morphlib.recommended`'s,
chosen by the settings study (``reports/quality``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from . import recommended
from .edits import FAMILIES
from .morph import REGIMES, class_names, morph, resolve_class
from .objectives import LOSSES
from .strength import AUTO_MAX_RMS, auto_morph
from .targets import POLICIES, pick_target
from .transforms import BANDWIDTHS


def read_image(spec: str) -> torch.Tensor:
    """An image ``(C, H, W)`` in ``[0, 1]`` from a file path or ``data:SET:INDEX``.

    Grey files (PIL modes ``1``, ``L``, ``LA``, ``I``, ``F``) give one channel, others RGB.
    """
    if spec.startswith("data:"):
        parts = spec.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError(f"expected data:SET:INDEX (e.g. data:orientation:3), got {spec!r}")
        from .data import load as load_data

        index = int(parts[2])
        images, _, _ = load_data(parts[1], split="test", n=index + 1, seed=0)
        return images[index]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"no image file {spec!r}; give a PNG/JPEG path or data:SET:INDEX")
    from PIL import Image

    with Image.open(path) as im:
        grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
        array = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array)
    return (tensor[None] if grey else tensor.permute(2, 0, 1)).contiguous()


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_command(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "morph",
        help="morph an image toward a class and save the renders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("image", help="image file, or data:SET:INDEX (a test image of a bundled data set)")
    p.add_argument(
        "--model",
        required=True,
        help="zoo model id (see zoo.yaml), e.g. digits-cnn, or any timm model of the Hub as "
        "hf-hub:ORG/NAME, e.g. hf-hub:timm/convnext_small.fb_in1k",
    )
    p.add_argument(
        "--target",
        required=True,
        help="target class: label name or index, or a policy: runner-up (the model's next choice after "
        "the source) or random (another class, seeded by --seed)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --target random")
    p.add_argument("--source", default=None, help="source class (default: the model's top-1)")
    p.add_argument("--family", default=recommended.FAMILY, choices=FAMILIES)
    p.add_argument("--regime", default=recommended.REGIME, choices=REGIMES)
    p.add_argument("--frames", type=int, default=16)
    strength = p.add_mutually_exclusive_group()
    strength.add_argument(
        "--budget", type=_positive_float, help="L2 distance of the last frame from the input"
    )
    strength.add_argument("--alpha", type=float, help="amplification of the last frame (normalised units)")
    strength.add_argument(
        "--auto",
        nargs="?",
        type=_positive_float,
        const=AUTO_MAX_RMS,
        metavar="MAX_RMS",
        help="auto strength (the default when no --budget or --alpha is given): stop where the "
        "target wins (see --goal-prob), searching up to an RMS change of MAX_RMS per value "
        f"(default {AUTO_MAX_RMS})",
    )
    p.add_argument(
        "--goal-prob",
        type=float,
        default=recommended.GOAL_PROB,
        help="auto strength's goal: the target's probability (0: the target becomes the top-1 class)",
    )
    p.add_argument("--loss", default="nll", choices=LOSSES)
    p.add_argument("--luma-only", action="store_true", help="edit only the YIQ luma, keep the chroma")
    p.add_argument("--phase-cap", type=_positive_float, help="largest phase increment, radians")
    p.add_argument(
        "--smooth-sigma",
        type=float,
        default=recommended.SMOOTH_SIGMA,
        help="amplitude-weighted smoothing of the phase, pixels (0: none)",
    )
    p.add_argument("--orientations", type=int, default=None, help="CSP orientations")
    p.add_argument("--bandwidth", default="octave", choices=sorted(BANDWIDTHS))
    p.add_argument("--scales", default="auto", help="CSP octaves, or auto")
    p.add_argument("--out", type=Path, help="directory for frames, GIF, MP4, contact sheet, plot, JSON")
    p.add_argument("--no-video", action="store_true", help="skip the MP4")
    p.add_argument("--fps", type=float, default=8.0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .zoo import load

    image = read_image(args.image)
    model = load(args.model)
    scales = args.scales if args.scales == "auto" else int(args.scales)
    pyramid = dict(scales=scales, orientations=args.orientations, bandwidth=args.bandwidth)
    target = _target(model, image, args)
    settings = dict(
        family=args.family,
        loss=args.loss,
        luma_only=args.luma_only,
        phase_cap=args.phase_cap,
        smooth_sigma=args.smooth_sigma or None,
        pyramid=pyramid,
        source=args.source,
    )
    if args.budget is None and args.alpha is None:
        if not 0 <= args.goal_prob < 1 or args.smooth_sigma < 0:
            raise ValueError("--goal-prob must lie in [0, 1) and --smooth-sigma be >= 0")
        cap = (args.auto or AUTO_MAX_RMS) * image.numel() ** 0.5
        result, found = auto_morph(
            model,
            image,
            target,
            regime=args.regime,
            frames=args.frames,
            max_budget=cap,
            min_prob=args.goal_prob or None,
            **settings,
        )
        print(f"auto strength: {found.message}")
    else:
        result = morph(
            model,
            image,
            target,
            regime=args.regime,
            frames=args.frames,
            budget=args.budget,
            alpha=args.alpha,
            **settings,
        )
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


def _target(model: torch.nn.Module, image: torch.Tensor, args: argparse.Namespace) -> int | str:
    """The ``--target`` class: a label or index as given, or picked by a policy of :mod:`morphlib.targets`."""
    if _is_label(model, args.target):
        return args.target
    if args.target in POLICIES:
        with torch.no_grad():
            logits = model(image[None].to(model.device))[0]
        labels = class_names(model, logits.numel())
        source = int(logits.argmax()) if args.source is None else resolve_class(args.source, labels)
        return pick_target(args.target, logits, source, np.random.default_rng(args.seed))
    return int(args.target) if args.target.isdigit() else args.target


def _is_label(model: torch.nn.Module, text: str) -> bool:
    labels = getattr(model, "labels", None) or []
    return text.lower() in (str(name).lower() for name in labels)
