"""What makes a morph good: drivers, edit settings and stopping rules, judged by strangers.

See ``docs/method.md`` §8 and §9.

For each driver, each edit setting and each (source, target) pair, :func:`~morphlib.morph_batch`
walks the path all the way to the search cap (:data:`~morphlib.engine.auto.STEPS` equal L2 steps,
``Strength.auto("cap")``); every frame is scored by the driver, kept as the 8-bit frame a video
shows, and read by each judge.  Every stopping rule of :data:`RULES` is then applied to that one
path: the frame it stops at is the frame an auto-strength morph with that rule ends at (when the
video asks for no more frames than the walk took; see :func:`morphlib.morph`), so one walk
measures them all, and a judge added later reads the kept frames without a new walk.

* **Judges** are counted only when they are independent of every driver
  (:mod:`morphlib.zoo.judges`: another architecture and another view of the data; a model of
  the driver's own architecture and data is a sibling, shown beside the others and never
  counted); the **majority** is a strict majority of the counted judges reading the target.
  Rates are over **all** pairs (not only the flips), with counts and Wilson 95 % intervals
  (:mod:`morphlib.stats`).
* **Held out**: the pairs are drawn once, seeded, from the test images every driver gets right;
  the first ``select`` pairs pick the (driver, setting, rule) with the most judge-majority reads
  among those that flip the driver on at least :data:`GOOD_FLIP_RATE` of them; the next
  ``report`` pairs, with other source images, report that pick.
* **Model-free measures**: the fade (loss of RMS contrast), the share of the change that is
  colour (YIQ chroma), and judges that are not networks where the class is a known factor: on
  the gratings the orientation of the Fourier energy
  (:class:`morphlib.metrics.FourierOrientation`) and of the structure tensor
  (:class:`morphlib.metrics.StructureTensorOrientation`), on the shapes the figure's outline
  (:class:`morphlib.metrics.ShapeOutline`).  The warp-explained energy E of the pick and of pixel
  edits on the same path and stop is fitted on the report pairs.

Each walked pair is one line of ``rows.jsonl`` (a rerun skips what is done); its frames are
kept (8-bit) in ``frames/``, the judges' readings in ``reads_<data set>.jsonl``.
:func:`write_report` writes ``report.md`` and ``results.csv`` and a grid of last frames at the
stop and at the cap per data set.
"""

from __future__ import annotations

from .outcomes import Line, Outcome, find, outcome, paired, pick, summarise, track_of
from .plan import (
    DEFAULT_MODELS,
    FOURIER_JUDGE,
    GOOD_FLIP_RATE,
    MAX_CHROMA,
    OUTLINE_JUDGE,
    PAPER_SETTING,
    RULES,
    TENSOR_JUDGE,
    Setting,
    StudyConfig,
    default_config,
    default_settings,
    pixel_peer,
    recommended_goal,
    recommended_setting,
    relation,
    split_pairs,
)
from .report import stored_configs, write_report
from .walk import run_study, warp_medians, with_reads

__all__ = [
    "DEFAULT_MODELS",
    "FOURIER_JUDGE",
    "GOOD_FLIP_RATE",
    "MAX_CHROMA",
    "OUTLINE_JUDGE",
    "PAPER_SETTING",
    "RULES",
    "TENSOR_JUDGE",
    "Line",
    "Outcome",
    "Setting",
    "StudyConfig",
    "default_config",
    "default_settings",
    "find",
    "outcome",
    "paired",
    "pick",
    "pixel_peer",
    "recommended_goal",
    "recommended_setting",
    "relation",
    "run_study",
    "split_pairs",
    "stored_configs",
    "summarise",
    "track_of",
    "warp_medians",
    "with_reads",
    "write_report",
]
