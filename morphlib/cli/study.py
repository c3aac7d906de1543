"""morphlib study: which driver, edit setting and stopping rule make morphs strangers read as the target.

For every driver, setting (edit family, regime, smoothing, luma-only) and (source, target)
pair, the morph is walked to the RMS cap and every frame is scored by the driver and by
judges independent of it; every stopping rule is applied to that one path.  The pick is
made on the selection pairs and reported on held-out report pairs (other source images);
rates come with counts and 95 % intervals.  See docs/method.md.  Resumable: a rerun skips
finished pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The data sets a study runs on (morphlib.study.DEFAULT_MODELS has their drivers and judges; kept
#: here too so that --help loads no torch, and checked against it by tests/test_cli.py).
DATASETS = ("mnist", "orientation", "shapes")


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


def add_command(subparsers) -> None:
    """Register ``study``."""
    from . import HelpFormatter

    p = subparsers.add_parser(
        "study",
        help="measure which driver, settings and stopping rule make morphs judges read as the target",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--datasets", default="mnist", help=f"comma-separated, of {', '.join(DATASETS)}")
    p.add_argument("--select", type=int, default=100, help="pairs the settings are picked on")
    p.add_argument("--report", type=int, default=200, help="held-out pairs the pick is reported on")
    p.add_argument("--drivers", help="comma-separated zoo ids (default: the data set's, see the report)")
    p.add_argument("--max-rms", type=float, default=0.28, help="search cap, RMS change per value")
    p.add_argument("--settings", help="comma-separated setting names to run (default: all; see report.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairs and their split")
    p.add_argument("--out", type=Path, default=Path("reports/quality"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from morphlib.data import CHANNELS
    from morphlib.study import default_config, default_settings, run_study, write_report

    names = _names(args.datasets) or ()
    unknown = [d for d in names if d not in DATASETS]
    if unknown or not names:
        raise ValueError(f"unknown data sets {list(unknown)}; choose from {', '.join(DATASETS)}")
    if not args.max_rms > 0:
        raise ValueError("--max-rms must be > 0")
    drivers = _names(args.drivers)
    for dataset in names:
        overrides: dict = dict(select=args.select, report=args.report, max_rms=args.max_rms, seed=args.seed)
        if drivers:
            overrides["drivers"] = drivers
        config = default_config(dataset, **overrides)
        settings = default_settings(CHANNELS[dataset])
        wanted = _names(args.settings)
        if wanted:
            known = {s.name: s for s in settings}
            missing = [w for w in wanted if w not in known]
            if missing:
                raise ValueError(f"unknown settings {missing}; known: {', '.join(known)}")
            settings = [known[w] for w in wanted]

        def report(done: int, total: int, name: str = dataset) -> None:
            print(
                f"\r{name}: {done}/{total} paths",
                end="" if done < total else "\n",
                file=sys.stderr,
                flush=True,
            )

        run_study(config, args.out, settings, progress=report)
    print(f"report: {write_report(args.out)}")
    return 0
