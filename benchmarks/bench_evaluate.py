"""Evaluation throughput: cases/s against batch size, and Ray workers against one process.

    python benchmarks/bench_evaluate.py            # both tables
    python benchmarks/bench_evaluate.py --no-ray   # batch sizes only

Cases are those of ``morphlib evaluate`` (morph, judges, warp fits: ``run_chunk``), on test
sources of the bundled models' data sets, and on random 224x224 images for a ResNet-50 with
random weights (no download).  Each figure is the median of ``--repeats`` runs over the same
sources, after a warm-up.  The Ray table compares 2 one-thread workers on a local cluster
(started once, not timed) with this process running the same chunks serially on 2 threads:
at steady state (after each worker's first chunk, which pays for importing torch and
loading the models) and overall, start-up included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from morphlib.data import load as load_data  # noqa: E402
from morphlib.evaluate import Case  # noqa: E402
from morphlib.executors import Chunk, RayExecutor, SerialExecutor, WorkerSetup, run_chunk  # noqa: E402
from morphlib.zoo import load  # noqa: E402

# (driver, judge, data set): the bundled models.
BUNDLED = [("digits-cnn-robust", "digits-judge", "digits"), ("shapes-cnn", "shapes-judge", "shapes")]
FAMILIES = ("pixel", "csp-phase")


def bundled(args) -> list[tuple[str, str, str]]:
    return [row for row in BUNDLED if row[0] in args.models]


def cases(index: int, label: int, n_classes: int, regime: str, budget: float) -> list[Case]:
    target = (label + 1) % n_classes
    return [Case(index, label, target, family, budget, regime) for family in FAMILIES]


def bundled_sources(dataset: str, n: int, regime: str, budget: float):
    images, labels, names = load_data(dataset, split="test", seed=0)
    return [(i, images[i], cases(i, int(labels[i]), len(names), regime, budget)) for i in range(n)]


def chunks(sources, batch: int) -> list[Chunk]:
    return [Chunk(sources[i : i + batch]) for i in range(0, len(sources), batch)]


def steady_rate(run, workers: int, repeats: int) -> tuple[float, float]:
    """Median cases/s of ``run()`` (an iterator of chunk results): after warm-up, and overall.

    Each worker's first chunk pays for warm-up (filter caches; on Ray, importing torch and
    loading the models), which a long evaluation pays once: the steady rate counts the
    cases that finish after ``workers`` results, over the time after them.
    """
    steady, overall = [], []
    for _ in range(repeats):
        start, warm, cases, total = time.perf_counter(), None, 0, 0
        for n, result in enumerate(run(), 1):
            total += len(result.rows)
            if warm is not None:
                cases += len(result.rows)
            elif n == workers:
                warm = time.perf_counter()
        end = time.perf_counter()
        steady.append(cases / (end - warm))
        overall.append(total / (end - start))
    return statistics.median(steady), statistics.median(overall)


def batch_table(args) -> None:
    torch.set_num_threads(args.threads)
    print(f"## cases/s against batch size ({args.threads} torch threads, median of {args.repeats})\n")
    sizes = [b for b in args.batches if b <= args.sources]
    print(
        "| model | image | regime | frames | sources | "
        + " | ".join(f"batch {b}" for b in sizes)
        + " | 8 vs 1 |"
    )
    print("|---|---|---|---:|---:|" + "---:|" * len(sizes) + "---:|")
    rows = []
    for driver, judge, dataset in bundled(args):
        model, judges = load(driver), [load(judge)]
        for regime in args.regimes:
            sources = bundled_sources(dataset, args.sources, regime, args.budget)
            size = "x".join(map(str, sources[0][1].shape))
            rows.append((driver, size, regime, args.frames, sources, model, judges))
    if args.resnet:
        import timm

        from morphlib.zoo.manifest import read_manifest
        from morphlib.zoo.model import ZooModel

        entry = read_manifest()["resnet50"]
        net = timm.create_model("resnet50", pretrained=False, num_classes=1000)
        model = ZooModel(net.float(), entry, [str(i) for i in range(1000)]).eval()
        g = torch.Generator().manual_seed(0)
        smooth = [
            torch.nn.functional.interpolate(torch.rand(1, 3, 28, 28, generator=g), 224, mode="bilinear")[0]
            for _ in range(args.resnet_sources)
        ]
        sources = [(i, x, cases(i, 0, 1000, "frozen", 4.0)) for i, x in enumerate(smooth)]
        rows.append(("resnet50 (random weights)", "3x224x224", "frozen", args.frames, sources, model, []))
    for name, size, regime, frames, sources, model, judges in rows:
        rates = {}
        run_chunk(Chunk(sources[:1]), model, judges, frames)  # warm-up: filter caches, allocator
        n_cases = sum(len(c) for _, _, c in sources)
        for b in [b for b in sizes if b <= len(sources)]:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for chunk in chunks(sources, b):
                    run_chunk(chunk, model, judges, frames)
                times.append(time.perf_counter() - start)
            rates[b] = n_cases / statistics.median(times)
        cells = " | ".join(f"{rates[b]:.2f}" if b in rates else "-" for b in sizes)
        top = max(rates)
        gain = f"{rates[top] / rates[min(rates)]:.2f}x" + (f" (batch {top})" if top != 8 else "")
        print(f"| {name} | {size} | {regime} | {frames} | {len(sources)} | {cells} | {gain} |", flush=True)


def ray_table(args) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        print(f"\n## Ray: 2 one-thread workers against one process on 2 threads (median of {args.repeats})\n")
        print(
            "| model | regime | sources | batch | serial cases/s | Ray cases/s | Ray / serial "
            "| serial, with start-up | Ray, with start-up | ratio |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for driver, judge, dataset in bundled(args):
            setup = WorkerSetup(driver, (judge,), args.frames)
            for regime in args.ray_regimes:
                sources = bundled_sources(dataset, args.ray_sources, regime, args.budget)
                work = chunks(sources, args.batch)
                torch.set_num_threads(2)
                models = load(driver), [load(judge)]

                def serial_run(setup=setup, work=work, models=models):
                    return SerialExecutor().map(setup, work, models)

                def ray_run(setup=setup, work=work):
                    return RayExecutor(workers=2).map(setup, work)

                serial, serial_all = steady_rate(serial_run, 1, args.repeats)
                on_ray, ray_all = steady_rate(ray_run, 2, args.repeats)
                print(
                    f"| {driver} | {regime} | {len(sources)} | {args.batch} | {serial:.2f} | {on_ray:.2f} "
                    f"| {on_ray / serial:.2f}x | {serial_all:.2f} | {ray_all:.2f} "
                    f"| {ray_all / serial_all:.2f}x |",
                    flush=True,
                )
    finally:
        ray.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=int, default=8)
    p.add_argument("--regimes", nargs="+", default=["frozen", "persistent"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--ray-regimes", nargs="+", default=["persistent"])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--budget", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-resnet", dest="resnet", action="store_false")
    p.add_argument("--resnet-sources", type=int, default=4)
    p.add_argument("--no-ray", dest="ray", action="store_false")
    p.add_argument("--no-batch-table", dest="batch_table", action="store_false")
    p.add_argument(
        "--models", nargs="+", default=[driver for driver, _, _ in BUNDLED], help="bundled drivers"
    )
    p.add_argument("--ray-sources", type=int, default=12)
    p.add_argument("--batch", type=int, default=2, help="batch of the Ray table")
    args = p.parse_args()
    if args.batch_table:
        batch_table(args)
    if args.ray:
        ray_table(args)


if __name__ == "__main__":
    main()
