"""morphlib evaluate: compare edit families at matched L2 budgets, resumably.

Runs here (--executor serial, the default) or on a Ray cluster (--executor ray: a local one,
or the one at --address / RAY_ADDRESS); either way this process writes the results, so an
interrupted run resumes with the same command.  The measures are explained in docs/method.md.

With --atlas, each source gets instead one decision-boundary atlas (its distance to every class
along the recommended path, top-1 goal, cap --cap-rms; docs/atlas.md), stored in atlas.jsonl, and
atlas_report.md tabulates the median distance per class pair (--families, --budgets, --judges and
--executor play no part then).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .morph import FAMILIES, POLICIES, REGIMES

#: Sources morphed together (morphlib.evaluate.DEFAULT_BATCH; tests/test_cli.py checks they agree).
DEFAULT_BATCH = 8

#: Default budgets of an image folder, as RMS changes per value of the driver's input.
FOLDER_RMS = (0.05, 0.1)
#: Seconds between progress lines when stderr is not a terminal (a log file, CI).
LOG_EVERY_S = 10.0


def _list(kind, choices=None):
    def parse(text: str):
        values = [kind(v) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        bad = [v for v in values if choices is not None and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return tuple(values)

    return parse


def add_command(subparsers: argparse._SubParsersAction) -> None:
    from . import HelpFormatter

    p = subparsers.add_parser(
        "evaluate",
        help="compare edit families (driver success, transfer, E)",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument(
        "--dataset", help="a bundled data set (its test split): shapes, orientation, digits, mnist"
    )
    data.add_argument(
        "--images",
        type=Path,
        help="an image folder, one sub-folder per class, named after the driver's labels, their ids "
        "(WordNet ids such as n01440764 for ImageNet) or their indices; unmatched folders are reported",
    )
    p.add_argument(
        "--model",
        required=True,
        help="zoo id of the driver (gradient) model, or hf-hub:ORG/NAME (any timm model of the Hub)",
    )
    p.add_argument(
        "--judges", type=_list(str), default=(), help="comma-separated zoo (or hf-hub:) ids of judge models"
    )
    p.add_argument(
        "--zoo",
        type=Path,
        help="a zoo manifest of your own (sets MORPHLIB_ZOO for this run; on a multi-node Ray cluster, set "
        "it on every node)",
    )
    p.add_argument(
        "--families", type=_list(str, FAMILIES), default=("pixel", "fourier-phase", "csp-phase", "csp-joint")
    )
    p.add_argument(
        "--budgets",
        type=_list(float),
        default=None,
        help="comma-separated L2 budgets (default: 1,2 on a data set, the published setting; on an image "
        f"folder, RMS changes of {', '.join(map(str, FOLDER_RMS))} per value at the driver's input size, "
        "since an L2 of 2 is nothing to a 224x224 photo)",
    )
    p.add_argument(
        "--regime",
        type=_list(str, REGIMES),
        default=None,
        help="comma-separated regimes (default: persistent; with --atlas, the recommended step-local)",
    )
    p.add_argument(
        "--sources",
        type=int,
        default=None,
        help="number of source images (default: 300 of a data set; every image of a folder that the driver "
        "classifies correctly)",
    )
    p.add_argument("--frames", type=int, default=8)
    p.add_argument(
        "--targets",
        choices=POLICIES,
        default="random",
        help="target policy: a seeded random other class (default), or the driver's runner-up",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="directory for results and report (resumable)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="sources morphed together (one chunk)")
    p.add_argument("--executor", choices=("serial", "ray"), default="serial", help="where the chunks run")
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)"
    )
    p.add_argument(
        "--atlas", action="store_true", help="record each source's distance to every class (docs/atlas.md)"
    )
    p.add_argument(
        "--cap-rms", type=float, default=0.28, help="--atlas: the search cap, an RMS change per value"
    )
    p.add_argument("--workers", type=int, default=None, help="Ray workers (default: as many as fit)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray worker (CUDA workers)")
    p.set_defaults(func=run)


@contextlib.contextmanager
def _manifest(path: Path | None) -> Iterator[None]:
    """``MORPHLIB_ZOO`` naming ``path`` while the run lasts (a local cluster's workers inherit it)."""
    from morphlib.zoo.manifest import MANIFEST_VARIABLE

    before = os.environ.get(MANIFEST_VARIABLE)
    if path is not None:
        os.environ[MANIFEST_VARIABLE] = str(path.resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MANIFEST_VARIABLE, None)
        else:
            os.environ[MANIFEST_VARIABLE] = before


def default_budgets(model: str, dataset: bool) -> tuple[float, ...]:
    """The published L2 budgets on a bundled data set; on an image folder, :data:`FOLDER_RMS` at the
    driver's input size (a budget that means the same on a digit and on a photo)."""
    if dataset:
        return (1.0, 2.0)
    from morphlib.zoo import entry_for

    entry = entry_for(model)
    values = entry.channels * entry.input_size[0] * entry.input_size[1]
    return tuple(round(rms * values**0.5, 2) for rms in FOLDER_RMS)


def run(args: argparse.Namespace) -> int:
    if args.zoo is not None and not args.zoo.is_file():
        raise ValueError(f"no zoo manifest at {args.zoo}")
    with _manifest(args.zoo):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    if args.atlas:
        return _atlas(args)
    from morphlib.evaluate import EvalConfig, evaluate

    if args.sources is not None and args.sources < 1:
        raise ValueError("--sources must be at least 1")
    sources = args.sources if args.sources is not None else (300 if args.dataset else 0)  # 0: all
    budgets = args.budgets or default_budgets(args.model, bool(args.dataset))
    if any(b <= 0 for b in budgets):
        raise ValueError("budgets must be > 0")
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    if args.executor != "ray" and (args.address or args.workers or args.gpus_per_worker):
        raise ValueError("--address, --workers and --gpus-per-worker need --executor ray")
    executor = None
    if args.executor == "ray":
        from morphlib.executors import RayExecutor

        try:
            executor = RayExecutor(args.address, args.workers, args.gpus_per_worker)
        except ImportError as err:
            raise ValueError(str(err)) from None
    config = EvalConfig(
        dataset=args.dataset,
        model=args.model,
        judges=args.judges,
        families=args.families,
        budgets=budgets,
        regimes=args.regime or ("persistent",),
        sources=sources,
        frames=args.frames,
        seed=args.seed,
        images=str(args.images) if args.images is not None else None,
        targets=args.targets,
    )
    started = time.monotonic()
    live = sys.stderr.isatty()
    last_line = [started - LOG_EVERY_S]  # the first line at once

    def progress(done: int, total: int, eta: float) -> None:
        when = f"ETA {eta:.0f} s" if eta == eta else "starting"  # NaN before the first chunk
        text = f"{done}/{total} cases, {time.monotonic() - started:.0f} s, {when}"
        if executor is not None:
            text += f" ({executor.status()})"
        if live:  # one line, rewritten in place
            print(f"\r{text}", end="", file=sys.stderr)
        elif done == total or time.monotonic() - last_line[0] >= LOG_EVERY_S:  # a log: a line now and then
            last_line[0] = time.monotonic()
            print(text, file=sys.stderr)

    evaluate(config, args.out, progress=progress, executor=executor, batch=args.batch)
    if live:
        print(file=sys.stderr)
    print(f"report: {args.out / 'report.md'}")
    return 0


def _atlas(args: argparse.Namespace) -> int:
    """``evaluate --atlas``: one atlas per source (morphlib.atlas.survey)."""
    from morphlib.atlas.survey import REPORT, SurveyConfig, survey

    if args.dataset is None:
        raise ValueError("--atlas runs on a bundled data set (--dataset)")
    if args.sources is not None and args.sources < 1:
        raise ValueError("--sources must be at least 1")
    if not 0 < args.cap_rms <= 1:
        raise ValueError(f"--cap-rms must lie in (0, 1], got {args.cap_rms}")
    config = SurveyConfig(
        dataset=args.dataset,
        model=args.model,
        sources=args.sources or 100,
        seed=args.seed,
        **({"regime": args.regime[0]} if args.regime else {}),
        cap_rms=args.cap_rms,
    )
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done == total or sys.stderr.isatty() or done % 10 == 0:
            print(f"\r{done}/{total} atlases, {time.monotonic() - started:.0f} s", end="", file=sys.stderr)

    survey(config, args.out, progress=progress)
    print(file=sys.stderr)
    print(f"report: {args.out / REPORT}")
    return 0
