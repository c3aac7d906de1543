"""How an evaluation's cases are run: in this process, or on the actors of a Ray cluster.

The driver (:func:`morphlib.evaluate.evaluate`) cuts the sources still to do into chunks
and writes every row itself, so a run resumes the same way whatever ran it.  An executor
only turns chunks into rows: :class:`SerialExecutor` here, one chunk after another;
:class:`RayExecutor` on worker actors that load their models once and take one chunk at a
time, a dead worker's chunk going to a fresh worker.  A chunk's sources are morphed as one
batch per (regime, budget, family) (:func:`morphlib.engine.morph_batch`), which gives the
numbers that one source at a time gives, to float tolerance.

Ray is optional (the ``ray`` extra) and imported only by :class:`RayExecutor`.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .config import MorphConfig, Strength
from .engine import BudgetUnreachable, morph_batch
from .imaging import to_uint8
from .metrics import fit_warp, judge_labels

#: Times a chunk is started again after the worker running it died, before the run gives up.
RETRIES = 3
#: Pixel values per batch of warp fits (float64): 2^23 keeps each of the fit's images at 64 MiB.
FIT_VALUES = 2**23
RAY_MISSING = "--executor ray needs Ray, an optional dependency: pip install 'morphlib[ray]' (or ray==2.60.0)"


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker loads once: the driver model, the judges, and how to morph."""

    model: str
    judges: tuple[str, ...]
    frames: int
    device: str = "cpu"
    threads: int | None = None  # torch threads; None leaves torch's default


@dataclass
class Chunk:
    """Sources for one worker call: ``(index, image (C, H, W), cases)`` for each."""

    sources: list[tuple[int, torch.Tensor, list[Any]]]
    keep_examples: frozenset[int] = frozenset()  # sources whose last frames come back as pixels

    @property
    def cases(self) -> int:
        return sum(len(cases) for _, _, cases in self.sources)


@dataclass
class ChunkResult:
    rows: list[dict]  # one per case, in the chunk's order
    examples: dict[str, np.ndarray] = field(default_factory=dict)  # PNG name -> uint8 pixels


def run_chunk(chunk: Chunk, model, judges: Sequence, frames: int) -> ChunkResult:
    """Morph a chunk's sources, one batch per (regime, budget, family), and measure the last frames.

    The warp fits of every reached case run as one batch (each image is its own fit, so
    the grouping does not change the numbers).
    """
    groups: dict[tuple, list[tuple[torch.Tensor, Any]]] = {}
    for _, image, cases in chunk.sources:
        for case in cases:
            groups.setdefault((case.regime, case.budget, case.family), []).append((image, case))
    measured: dict[str, dict] = {}
    lasts: dict[str, torch.Tensor] = {}
    for (regime, budget, family), members in groups.items():
        start = time.perf_counter()
        results = morph_batch(
            model,
            [image for image, _ in members],
            [case.target for _, case in members],
            MorphConfig(family=family, regime=regime),
            Strength.budget(budget),
            frames=frames,
            sources=[case.label for _, case in members],
        )
        seconds = (time.perf_counter() - start) / len(members)
        for (_, case), result in zip(members, results, strict=True):
            if isinstance(result, BudgetUnreachable):
                measured[case.key] = dict(unreachable=str(result))
                continue
            lasts[case.key] = result.frames[-1:]
            measured[case.key] = dict(
                l2=float(result.l2[-1]),
                p_target=float(result.target_probs[-1]),
                p_target_start=float(result.target_probs[0]),
                p_source=float(result.source_probs[-1]),
                top1=int(result.probs[-1].argmax()),
                seconds=seconds,
            )
    verdicts = _judge(judges, lasts)
    energies = _warp_energies(chunk, lasts)
    rows, examples = [], {}
    for index, _, cases in chunk.sources:
        reached = [case.key for case in cases if case.key in lasts]
        for case in cases:
            row = dict(asdict(case), key=case.key, **measured[case.key])
            if case.key in lasts:  # the row's fields in the order one-at-a-time runs wrote them
                judged = verdicts[case.key]
                seconds = row.pop("seconds")
                transfer = sum(int(v == case.target) for v in judged.values())
                row.update(judges=judged, transfer=transfer, seconds=seconds, **energies[case.key])
            rows.append(row)
        if index in chunk.keep_examples:
            examples.update({f"{key.replace('|', '_')}.png": pixels(lasts[key][0]) for key in reached})
    return ChunkResult(rows, examples)


@torch.no_grad()
def _judge(judges: Sequence, lasts: dict[str, torch.Tensor]) -> dict[str, dict[str, int]]:
    """Each judge's top-1 class for every last frame, scored in batches."""
    keys = list(lasts)
    verdicts: dict[str, dict[str, int]] = {key: {} for key in keys}
    if not keys:
        return verdicts
    labels = judge_labels(judges, torch.cat([lasts[key] for key in keys]))
    for judge, top1 in zip(judges, labels.tolist(), strict=True):
        for key, label in zip(keys, top1, strict=True):
            verdicts[key][judge.entry.id] = label
    return verdicts


def _warp_energies(chunk: Chunk, lasts: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Warp-explained energy of every reached case's last frame: warp only, and warp plus gain."""
    keys, sources = [], []
    for _, image, cases in chunk.sources:
        for case in cases:
            if case.key in lasts:
                keys.append(case.key)
                sources.append(image.cpu())
    if not keys:
        return {}
    per_group = max(1, FIT_VALUES // sources[0].numel())
    energies = {}
    for at in range(0, len(keys), per_group):
        group = keys[at : at + per_group]
        edited = torch.cat([lasts[key].cpu() for key in group]).double()
        source = torch.stack(sources[at : at + per_group]).double()
        warp = fit_warp(source, edited)
        gained = fit_warp(source, edited, gain=True, start=warp)
        for key, w, g in zip(group, warp.energy, gained.energy, strict=True):
            energies[key] = dict(e_warp=float(w), e_warp_gain=float(g))
    return energies


def pixels(frame: torch.Tensor) -> np.ndarray:
    """A frame ``(C, H, W)`` as 8-bit pixels ``(H, W, 3)``, or ``(H, W)`` for one channel (as PNG)."""
    out = to_uint8(frame)
    return out[..., 0] if out.shape[-1] == 1 else out


# ---------------------------------------------------------------------- executors
class Worker:
    """Loads the models of ``setup`` once, then runs chunks (in this process, or as a Ray actor)."""

    def __init__(self, setup: WorkerSetup, models: tuple | None = None):
        from .zoo import load

        if setup.threads:
            torch.set_num_threads(setup.threads)
        self.setup = setup
        if models is None:
            models = (
                load(setup.model, device=setup.device),
                [load(j, device=setup.device) for j in setup.judges],
            )
        self.model, self.judges = models

    def run(self, chunk: Chunk) -> ChunkResult:
        return run_chunk(chunk, self.model, self.judges, self.setup.frames)


class SerialExecutor:
    """Chunks one after another in this process (batched within a chunk)."""

    name = "serial"

    def map(
        self, setup: WorkerSetup, chunks: Sequence[Chunk], models: tuple | None = None
    ) -> Iterator[ChunkResult]:
        """Results of ``chunks`` in order; ``models`` are the (driver, judges) already loaded."""
        worker = Worker(setup, models)
        for chunk in chunks:
            yield worker.run(chunk)


class WorkerDied(RuntimeError):
    """Workers died on the same chunk more than :data:`RETRIES` times."""


class RayExecutor:
    """Chunks on Ray actors, one chunk at a time each; results in the order they finish.

    Parameters
    ----------
    address : str, optional
        A running cluster (``ray start --head`` prints it; ``auto`` finds a local one).  By
        default ``RAY_ADDRESS``, else a local cluster started for the run and stopped after.
        If this process is already connected (``ray.init`` was called), that cluster is used.
    workers : int, optional
        Number of actors; by default as many as the cluster has room for.
    gpus_per_worker : float
        GPUs each actor reserves (CUDA workers); 0 for CPU workers.
    cpus_per_worker : int
        CPUs each actor reserves, and the torch threads it runs.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: int = 1,
    ):
        self.ray = import_ray()
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if gpus_per_worker < 0 or cpus_per_worker < 1:
            raise ValueError("gpus_per_worker must be >= 0 and cpus_per_worker >= 1")
        self.address = address
        self.workers = workers
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.actors: list = []  # the live worker handles (a test may kill one)
        self.retried: list[int] = []  # chunks started again after their worker died

    def map(
        self, setup: WorkerSetup, chunks: Sequence[Chunk], models: tuple | None = None
    ) -> Iterator[ChunkResult]:
        """Results of ``chunks`` as they finish (``models`` is ignored: each worker loads its own)."""
        if not chunks:  # nothing left to run: no cluster to start
            return
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False)
        try:
            gpu = self.gpus_per_worker > 0
            setup = WorkerSetup(
                setup.model, setup.judges, setup.frames, "cuda" if gpu else "cpu", self.cpus_per_worker
            )
            actor = ray.remote(Worker).options(num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker)
            self.actors = [actor.remote(setup) for _ in range(min(self._size(), len(chunks)))]
            queue = deque(range(len(chunks)))
            deaths: Counter[int] = Counter()
            running: dict = {}  # ObjectRef -> (actor slot, chunk index)

            def give(slot: int) -> None:
                if queue:
                    index = queue.popleft()
                    running[self.actors[slot].run.remote(chunks[index])] = (slot, index)

            for slot in range(len(self.actors)):
                give(slot)
            while running:
                [ref], _ = ray.wait(list(running), num_returns=1)
                slot, index = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as err:
                    deaths[index] += 1
                    if deaths[index] > RETRIES:
                        sources = [i for i, _, _ in chunks[index].sources]
                        raise WorkerDied(
                            f"workers died {deaths[index]} times running sources {sources}: {err}"
                        ) from err
                    self.retried.append(index)
                    ray.kill(self.actors[slot])
                    self.actors[slot] = actor.remote(setup)  # a fresh worker, which loads the models again
                    queue.appendleft(index)
                    give(slot)
                    continue
                give(slot)  # keep the worker busy while the driver writes
                yield result
        finally:
            for handle in self.actors:
                ray.kill(handle)
            self.actors = []
            if started:
                ray.shutdown()

    def status(self) -> str:
        """Workers now, and chunks run again after a worker died (for progress lines)."""
        text = f"ray: {len(self.actors)} workers"
        return text + (f", {len(self.retried)} chunks retried" if self.retried else "")

    def _size(self) -> int:
        if self.workers is not None:
            return self.workers
        resources = self.ray.cluster_resources()
        if self.gpus_per_worker > 0:
            n = int(resources.get("GPU", 0) // self.gpus_per_worker)
            what = f"{self.gpus_per_worker:g} GPU"
        else:
            n = int(resources.get("CPU", 0) // self.cpus_per_worker)
            what = f"{self.cpus_per_worker} CPU"
        if n < 1:
            raise ValueError(f"the Ray cluster has no room for a worker of {what} ({resources})")
        return n


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(RAY_MISSING) from err
    return ray
