"""The app's settings, validated, and their permalinks (URL query parameters).

A permalink holds every setting that differs from its default, plus the model, the
target and (for an example image) the example's name; an uploaded image is not part of
a link.  Reading a link back is lenient: a bad or unknown parameter is skipped with a
warning, so an old or hand-edited link still opens.

Examples
--------
>>> s = Settings(model="digits-cnn", target="8", example="digit-3", family="pixel", frames=8)
>>> query = s.to_query()
>>> query
'model=digits-cnn&target=8&example=digit-3&family=pixel&frames=8'
>>> Settings.from_query(query)[0] == s
True
>>> Settings.from_query("frames=many&colour=red")[1]
["ignored frames='many': frames must be an integer, got 'many'", "ignored unknown parameter 'colour'"]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from morphlib.morph import REGIMES
from morphlib.transforms import BANDWIDTHS

#: Edit families offered by the app, default first.
FAMILIES: tuple[str, ...] = ("csp-phase", "csp-joint", "fourier-phase", "pixel")
#: How strength is given: searched, as an L2 budget, or as a raw amplification.
MODES: tuple[str, ...] = ("auto", "budget", "alpha")
MAX_FRAMES = 64
MAX_ORIENTATIONS = 8
#: Largest ``prob`` (auto mode's goal probability), for the UI's slider and the permalinks alike.
MAX_PROB = 0.99

#: Query parameter of each field (fields not listed use their own name).
QUERY_NAMES = {"luma_only": "luma", "phase_cap": "cap", "smooth_sigma": "smooth"}
_FIELD_OF = {v: k for k, v in QUERY_NAMES.items()}

#: Gradio's own query parameters (``?view=api``, ``?__theme=dark``...), not settings: skipped silently.
GRADIO_PARAMS = frozenset({"view"})

__all__ = ["FAMILIES", "MAX_FRAMES", "MAX_PROB", "MODES", "Settings", "parse_bool"]


@dataclass(frozen=True)
class Settings:
    """Everything that decides a morph in the app.

    Attributes
    ----------
    model : str
        Zoo model id.
    target : str
        Target class label (or index); empty: the app suggests one.
    example : str
        Name of the example image, if the image is one (permalinks only).
    family, regime : str
        Edit family (:data:`FAMILIES`) and regime (``frozen``, ``persistent``, ``step-local``).
    mode : {"auto", "budget", "alpha"}
        ``auto``: the smallest L2 budget at which the target wins (``prob`` = 0: becomes
        top-1; else reaches that probability), at most ``strength`` when given as a cap;
        ``budget``: ``strength`` is the L2 distance of the last frame from the input;
        ``alpha``: ``strength`` is the raw amplification.
    strength : float
        See ``mode``; 0 means the default: a budget of RMS 0.05 per value in ``budget`` mode,
        a search cap of RMS 0.2 in ``auto`` mode (``alpha`` mode needs a value).
    prob : float
        ``auto`` mode's goal probability, ``0`` for "becomes top-1".
    frames : int
        Number of frames, 2 to :data:`MAX_FRAMES`.
    orientations : int
        CSP orientations, 0 for the default (4 per octave, 8 for sub-octave bandwidths).
    bandwidth : str
        CSP bandwidth: ``octave``, ``half-octave`` or ``quarter-octave``.
    luma_only : bool
        Edit only the luma (YIQ), keep the chroma.
    phase_cap : float
        Largest phase increment in radians, 0 for none.
    smooth_sigma : float
        Amplitude-weighted smoothing of the phase gradient, 0 for none.
    """

    model: str = ""
    target: str = ""
    example: str = ""
    family: str = "csp-phase"
    regime: str = "frozen"
    mode: str = "auto"
    strength: float = 0.0
    prob: float = 0.0
    frames: int = 16
    orientations: int = 0
    bandwidth: str = "octave"
    luma_only: bool = False
    phase_cap: float = 0.0
    smooth_sigma: float = 0.0

    def validated(self) -> Settings:
        """The same settings with normalised types; raises ValueError naming the bad one."""
        s = self
        problems = [msg for f in fields(self) if (msg := _check(f.name, getattr(s, f.name))) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return replace(
            s,
            model=str(s.model).strip(),
            target=str(s.target).strip(),
            example=str(s.example).strip(),
            strength=float(s.strength),
            prob=float(s.prob),
            frames=int(s.frames),
            orientations=int(s.orientations),
            luma_only=bool(s.luma_only),
            phase_cap=float(s.phase_cap),
            smooth_sigma=float(s.smooth_sigma),
        )

    # ------------------------------------------------------------------ permalinks
    def to_query(self) -> str:
        """URL query string: model, target and example when set, then every non-default setting."""
        defaults = Settings()
        pairs = []
        for f in fields(self):
            value = getattr(self, f.name)
            always = f.name in ("model", "target", "example") and value not in ("", None)
            if always or (
                f.name not in ("model", "target", "example") and value != getattr(defaults, f.name)
            ):
                pairs.append((QUERY_NAMES.get(f.name, f.name), _format(value)))
        return urlencode(pairs)

    def link(self, base_url: str, run: bool = True) -> str:
        """A permalink: ``base_url`` with :meth:`to_query` (and ``run=1`` to morph on opening)."""
        query = self.to_query() + ("&run=1" if run and self.example else "")
        base = base_url.split("?", 1)[0]
        return f"{base}?{query}" if query else base

    @classmethod
    def from_query(cls, query: str | Mapping[str, str]) -> tuple[Settings, list[str]]:
        """Settings from a query string, a URL, or a mapping of parameters.

        Returns
        -------
        settings : Settings
            Defaults where a parameter is missing or bad.
        warnings : list of str
            One line per parameter that was ignored.
        """
        if isinstance(query, str):
            text = urlsplit(query).query if "?" in query or "://" in query else query
            items = parse_qsl(text.lstrip("?"), keep_blank_values=True)
        else:
            items = list(query.items())
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        warnings = []
        for key, raw in items:
            name = _FIELD_OF.get(key, key)
            if key == "run" or key in GRADIO_PARAMS or key.startswith("__"):
                continue
            if name not in known:
                warnings.append(f"ignored unknown parameter {key!r}")
                continue
            try:
                value = _parse(name, str(raw))
                problem = _check(name, value)
            except ValueError as err:
                problem = str(err)
            if problem is not None:
                warnings.append(f"ignored {key}={raw!r}: {problem}")
                continue
            values[name] = value
        return cls(**values), warnings

    def as_dict(self) -> dict:
        return asdict(self)


def wants_run(query: str | Mapping[str, str]) -> bool:
    """Whether a permalink asks for the morph to run when it is opened (``run=1``)."""
    if isinstance(query, str):
        text = urlsplit(query).query if "?" in query or "://" in query else query
        items = dict(parse_qsl(text.lstrip("?")))
    else:
        items = dict(query)
    return str(items.get("run", "")).lower() in ("1", "true", "yes")


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        text = repr(value)  # the shortest text that reads back as the same float
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def parse_bool(name: str, value: object) -> bool:
    """``value`` as a bool: a bool, 0 or 1, or a text such as ``"true"``, ``"false"``, ``"1"``, ``"0"``.

    >>> parse_bool("luma_only", "false"), parse_bool("luma_only", 1)
    (False, True)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if value.strip().lower() in ("0", "false", "no", "off"):
            return False
    raise ValueError(f"{name} must be true or false (or 1 or 0), got {value!r}")


def _parse(name: str, raw: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "bool":
        return parse_bool(name, raw)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
    return raw


def _check(name: str, value: object) -> str | None:
    """A message if ``value`` is not valid for field ``name``, else ``None``."""

    def number(low: float, high: float | None = None, integer: bool = False) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number, got {value!r}"
        if integer and float(value) != int(value):
            return f"{name} must be an integer, got {value!r}"
        if not math.isfinite(float(value)) or value < low or (high is not None and value > high):
            upper = f" and at most {high:g}" if high is not None else ""
            return f"{name} must be at least {low:g}{upper}, got {value!r}"
        return None

    def choice(options: tuple[str, ...] | list[str]) -> str | None:
        if value not in options:
            return f"unknown {name} {value!r}; choose one of {', '.join(options)}"
        return None

    if name in ("model", "target", "example"):
        return (
            None if isinstance(value, str | int) and len(str(value)) <= 200 else f"{name} is not a short text"
        )
    if name == "family":
        return choice(FAMILIES)
    if name == "regime":
        return choice(REGIMES)
    if name == "mode":
        return choice(MODES)
    if name == "bandwidth":
        return choice(sorted(BANDWIDTHS))
    if name == "strength":
        return number(0.0)
    if name == "prob":
        return number(0.0, MAX_PROB)
    if name == "frames":
        return number(2, MAX_FRAMES, integer=True)
    if name == "orientations":
        problem = number(0, MAX_ORIENTATIONS, integer=True)
        if problem is None and value == 1:
            return "orientations must be 0 (default) or 2 to 8, got 1"
        return problem
    if name in ("phase_cap", "smooth_sigma"):
        return number(0.0, 100.0)
    if name == "luma_only":
        return (
            None if isinstance(value, bool | int) and value in (0, 1) else "luma_only must be true or false"
        )
    return f"unknown setting {name!r}"  # pragma: no cover - every field is listed above
