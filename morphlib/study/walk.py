"""Walking every (driver, setting, pair) to the cap, the judges' readings and the warp fits."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from morphlib.config import Strength
from morphlib.data import CHANNELS
from morphlib.data import load as load_data
from morphlib.engine import morph_batch
from morphlib.engine.auto import STEPS
from morphlib.engine.classifier import BATCH
from morphlib.metrics import chroma_share, fade, fit_warp, judge_labels
from morphlib.stopping import Track
from morphlib.store import RunStore

from .outcomes import Line, outcome, pick, summarise
from .plan import (
    SPLITS,
    Setting,
    StudyConfig,
    default_settings,
    frames_path,
    load_judge,
    pixel_peer,
    row_key,
    split_pairs,
)


def run_study(
    config: StudyConfig,
    out: Path,
    settings: Sequence[Setting] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Run (or resume) the study of ``config`` into ``out``; returns its rows.

    Walks every (driver, setting, pair), then fits the warp energy of the pick (and of its pixel
    peer) on the report pairs.
    """

    def same(stored: dict) -> bool:  # other drivers or judges extend a study; other pairs do not
        keep = ("dataset", "select", "report", "max_rms", "seed")
        return all(stored[k] == asdict(config)[k] for k in keep)

    store = RunStore(out, rows="rows.jsonl", settings=f"config_{config.dataset}.json")
    with store.open(asdict(config), same):
        _walk(config, out, store, list(settings or default_settings(CHANNELS[config.dataset])), progress)
        rows = [r for r in store.rows() if r["dataset"] == config.dataset]
        _read(config, out, rows)
        rows = with_reads(out, config.dataset, rows)
        _fit_warps(config, out, rows)
        return rows


def _walk(
    config: StudyConfig,
    out: Path,
    store: RunStore,
    settings: list[Setting],
    progress: Callable[[int, int], None] | None,
) -> None:
    from morphlib.zoo import load

    drivers = {d: load(d) for d in config.drivers}
    images, labels, _ = load_data(config.dataset, "test", seed=0)
    splits = split_pairs(config, list(drivers.values()), images, labels)
    pairs = [(split, *pair) for split in SPLITS for pair in splits[split]]
    done = store.done
    total = len(drivers) * len(settings) * len(pairs)
    count = sum(
        row_key(config.dataset, d, s.name, i, t) in done
        for d in drivers
        for s in settings
        for _, i, _, t in pairs
    )
    side = math.sqrt(images[0].numel())
    for driver_name, driver in drivers.items():
        for setting in settings:
            path = frames_path(out, config.dataset, driver_name, setting.name)
            kept = torch.load(path) if path.exists() else {}
            todo = [
                p for p in pairs if row_key(config.dataset, driver_name, setting.name, p[1], p[3]) not in done
            ]
            for start in range(0, len(todo), BATCH):
                chunk = todo[start : start + BATCH]
                results = morph_batch(
                    driver,
                    images[[i for _, i, _, _ in chunk]],
                    [t for _, _, _, t in chunk],
                    setting.config(),
                    Strength.auto("cap", cap_rms=config.max_rms),
                    frames=STEPS + 1,
                    sources=[y for _, _, y, _ in chunk],
                )
                rows = []
                for (split, index, label, target), result in zip(chunk, results, strict=True):
                    if isinstance(result, Exception):
                        raise result
                    frames = result.frames
                    track = Track.of(result.probs, target, result.l2)
                    source = images[index : index + 1].expand_as(frames)
                    rows.append(
                        dict(
                            key=row_key(config.dataset, driver_name, setting.name, index, target),
                            dataset=config.dataset,
                            driver=driver_name,
                            setting=setting.name,
                            **asdict(setting),
                            split=split,
                            index=index,
                            label=label,
                            target=target,
                            rms=[round(float(v) / side, 5) for v in track.l2],
                            p=[round(float(v), 5) for v in track.p],
                            top1=[bool(v) for v in track.top1],
                            margin=[round(float(v), 4) for v in track.margin],
                            driver_top1=result.probs.argmax(dim=1).tolist(),
                            fade=[round(float(v), 4) for v in fade(source, frames)],
                            chroma=[round(float(v), 4) for v in chroma_share(source, frames)],
                        )
                    )
                    kept[index] = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(kept, path)
                store.append(rows)
                count += len(rows)
                if progress is not None:
                    progress(count, total)


# -- the judges ---------------------------------------------------------------------------------


def _reads_path(out: Path, dataset: str) -> Path:
    return out / f"reads_{dataset}.jsonl"


def _stored_reads(out: Path, dataset: str) -> dict[tuple[str, str], list[int]]:
    path = _reads_path(out, dataset)
    if not path.exists():
        return {}
    lines = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["key"], r["judge"]): r["reads"] for r in lines}


def _read(config: StudyConfig, out: Path, rows: Sequence[dict]) -> None:
    """Each judge's top-1 class of every kept frame of ``rows`` it has not read yet."""
    done = _stored_reads(out, config.dataset)
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["driver"], row["setting"]), []).append(row)
    for name in (*config.judges, *config.shown):
        judge = None
        for (driver, setting), group in groups.items():
            todo = [r for r in group if (r["key"], name) not in done]
            if not todo:
                continue
            judge = judge or load_judge(name, config.dataset)
            frames = torch.load(frames_path(out, config.dataset, driver, setting))
            lines = []
            for start in range(0, len(todo), BATCH):  # the frames of BATCH rows at a time
                chunk = todo[start : start + BATCH]
                every = torch.cat([frames[r["index"]] for r in chunk]).float() / 255
                seen = judge_labels([judge], every, batch=len(every))[0].view(len(chunk), -1).tolist()
                lines += [
                    json.dumps(dict(key=r["key"], judge=name, reads=s))
                    for r, s in zip(chunk, seen, strict=True)
                ]
            with _reads_path(out, config.dataset).open("a") as f:
                f.write("\n".join(lines) + "\n")


def with_reads(out: Path, dataset: str, rows: Sequence[dict]) -> list[dict]:
    """``rows`` with ``judges``: each judge's top-1 class per frame, for the judges that read them all."""
    reads = _stored_reads(out, dataset)
    judges = sorted({j for _, j in reads})
    return [dict(r, judges={j: reads[(r["key"], j)] for j in judges if (r["key"], j) in reads}) for r in rows]


# -- the warp energy of the pick ----------------------------------------------------------------


def warp_path(out: Path, dataset: str) -> Path:
    return out / f"warp_{dataset}.json"


def _fit_warps(config: StudyConfig, out: Path, rows: list[dict]) -> None:
    """E (warp only, warp + gain) of the report pairs' stop frames for the pick and its pixel peer."""
    lines = summarise(rows, config)
    best = pick(lines)
    if best is None:
        return
    path = warp_path(out, config.dataset)
    fitted = json.loads(path.read_text()) if path.exists() else {}
    images, _, _ = load_data(config.dataset, "test", seed=0)
    for setting in dict.fromkeys((best.setting, pixel_peer(best.setting, rows))):
        mine = [
            r
            for r in rows
            if r["driver"] == best.driver and r["setting"] == setting and r["split"] == "report"
        ]
        todo = [r for r in mine if f"{r['key']}|{best.rule}" not in fitted]
        if not todo:
            continue
        frames = torch.load(frames_path(out, config.dataset, best.driver, setting))
        stops = [outcome(r, best.rule, config.judges).stop for r in todo]
        edited = torch.stack([frames[r["index"]][k].float() / 255 for r, k in zip(todo, stops, strict=True)])
        sources = images[[r["index"] for r in todo]]
        warp = fit_warp(sources, edited).energy.tolist()
        gain = fit_warp(sources, edited, gain=True).energy.tolist()
        for r, e, g in zip(todo, warp, gain, strict=True):
            fitted[f"{r['key']}|{best.rule}"] = [_finite(e), _finite(g)]
        path.write_text(json.dumps(fitted, indent=0, sort_keys=True))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def warp_medians(out: Path, dataset: str, line: Line, rows: Sequence[dict]) -> tuple[float, float] | None:
    """Median E (warp, warp + gain) of ``line``'s report pairs, when fitted."""
    path = warp_path(out, dataset)
    if not path.exists():
        return None
    fitted = json.loads(path.read_text())
    keys = [
        f"{r['key']}|{line.rule}"
        for r in rows
        if (r["driver"], r["setting"], r["split"]) == (line.driver, line.setting, line.split)
    ]
    got = [fitted[k] for k in keys if k in fitted]
    if not got:
        return None
    warp = [e for e, _ in got if e is not None]
    gain = [g for _, g in got if g is not None]
    return float(np.median(warp)), float(np.median(gain))
