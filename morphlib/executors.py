"""How an evaluation's cases are run: in this process, or on the actors of a Ray cluster.

The driver (:func:`morphlib.evaluate.evaluate`) cuts the sources still to do into chunks
and writes every row itself, so a run resumes the same way whatever ran it.  An executor
only turns chunks into rows: :class:`SerialExecutor` here, one chunk after another;
:class:`RayExecutor` on worker actors that load their models once and take one chunk at a
time, a dead worker's chunk going to a fresh worker.  A chunk's sources are morphed as one
batch per (regime, budget, family) (:func:`morphlib.batch.morph_batch`), which gives the
numbers that one source at a time gives, to float tolerance.

Ray is optional (the ``ray`` extra) and imported only by :class:`RayExecutor`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .batch import morph_batch
from .metrics import fit_warp
from .morph import BATCH, BudgetUnreachable

#: Times a chunk is started again after the worker running it died, before the run gives up.
RETRIES = 3
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

    Each source's warp fits run as one batch of its reached cases, in plan order, as they
    do when sources run one at a time (a batch fit is one L-BFGS problem, so its grouping
    is part of the numbers).
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
            family=family,
            regime=regime,
            frames=frames,
            budget=budget,
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
    rows, examples = [], {}
    for index, image, cases in chunk.sources:
        reached = [case.key for case in cases if case.key in lasts]
        energies = _warp_energies(image, reached, lasts)
        for case in cases:
            row = dict(asdict(case), key=case.key, **measured[case.key])
            if case.key in lasts:  # the row's fields in the order one-at-a-time runs wrote them
                judged = verdicts[case.key]
                seconds = row.pop("seconds")
                transfer = sum(int(v == case.target) for v in judged.values())
                row.update(judges=judged, transfer=transfer, seconds=seconds, **energies[case.key])
            rows.append(row)
        if index in chunk.keep_examples:
            examples.update({f"{key.replace('|', '_')}.png": _pixels(lasts[key][0]) for key in reached})
    return ChunkResult(rows, examples)


@torch.no_grad()
def _judge(judges: Sequence, lasts: dict[str, torch.Tensor]) -> dict[str, dict[str, int]]:
    """Each judge's top-1 class for every last frame, scored in batches."""
    keys = list(lasts)
    verdicts: dict[str, dict[str, int]] = {key: {} for key in keys}
    if not keys:
        return verdicts
    frames = torch.cat([lasts[key] for key in keys])
    for judge in judges:
        device = next(judge.parameters()).device
        top1 = torch.cat([judge(part.to(device)).argmax(-1).cpu() for part in frames.split(BATCH)])
        for key, label in zip(keys, top1.tolist(), strict=True):
            verdicts[key][judge.entry.id] = label
    return verdicts


def _warp_energies(image: torch.Tensor, keys: list[str], lasts: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Warp-explained energy of each of one source's last frames: warp only, and warp plus gain."""
    if not keys:
        return {}
    edited = torch.cat([lasts[key] for key in keys]).double()
    source = image[None].double().cpu().expand_as(edited)
    warp = fit_warp(source, edited)
    gained = fit_warp(source, edited, gain=True, start=warp)
    return {
        key: dict(e_warp=float(w), e_warp_gain=float(g))
        for key, w, g in zip(keys, warp.energy, gained.energy, strict=True)
    }


def _pixels(frame: torch.Tensor) -> np.ndarray:
    pixels = (frame.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


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
    workers = 1

    def map(
        self, setup: WorkerSetup, chunks: Sequence[Chunk], models: tuple | None = None
    ) -> Iterator[ChunkResult]:
        """Results of ``chunks`` in order; ``models`` are the (driver, judges) already loaded."""
        worker = Worker(setup, models)
        for chunk in chunks:
            yield worker.run(chunk)
