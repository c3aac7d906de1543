"""morphlib study: which morph settings flip the class in a way independent judges agree with.

For every setting (edit family, regime, pyramid bandwidth, phase cap, smoothing, luma-only,
stopping goal) and every (source, target) pair, the morph is walked with auto strength up to
an RMS budget cap.  Per setting the report gives the flip rate, the judges' agreement, the
warp-explained energy and the fade; see docs/method.md.  Resumable: a rerun skips finished pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The data sets a study runs on (morphlib.study.DEFAULT_MODELS has their models).
DATASETS = ("mnist", "shapes", "orientation", "digits")


def add_command(subparsers) -> None:
    """Register ``study``."""
    from . import HelpFormatter

    p = subparsers.add_parser(
        "study",
        help="measure which morph settings flip the class in a way judges agree with",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--datasets",
        default="mnist,shapes,orientation",
        help=f"comma-separated, of {', '.join(DATASETS)}",
    )
    p.add_argument("--sources", type=int, default=40, help="(source, target) pairs per data set")
    p.add_argument("--max-rms", type=float, default=0.28, help="budget cap, RMS change per value")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--settings", help="comma-separated setting names to run (default: all; see report.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("reports/quality"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from morphlib.data import CHANNELS
    from morphlib.study import DEFAULT_MODELS, StudyConfig, default_settings, run_study, write_report

    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in names if d not in DEFAULT_MODELS]
    if unknown or not names:
        raise ValueError(f"unknown data sets {unknown}; choose from {', '.join(DEFAULT_MODELS)}")
    if args.sources < 1 or not args.max_rms > 0:
        raise ValueError("--sources must be >= 1 and --max-rms > 0")
    configs = [
        StudyConfig(
            d,
            *DEFAULT_MODELS[d],
            sources=args.sources,
            max_rms=args.max_rms,
            frames=args.frames,
            seed=args.seed,
        )
        for d in names
    ]
    for config in configs:
        settings = default_settings(CHANNELS[config.dataset])
        if args.settings:
            wanted = [w.strip() for w in args.settings.split(",") if w.strip()]
            known = {s.name: s for s in settings}
            missing = [w for w in wanted if w not in known]
            if missing:
                raise ValueError(f"unknown settings {missing}; known: {', '.join(known)}")
            settings = [known[w] for w in wanted]

        def report(done: int, total: int, name: str = config.dataset) -> None:
            print(
                f"\r{name}: {done}/{total} morphs",
                end="" if done < total else "\n",
                file=sys.stderr,
                flush=True,
            )

        run_study(config, args.out, settings, progress=report)
    print(f"report: {write_report(args.out)}")
    return 0
