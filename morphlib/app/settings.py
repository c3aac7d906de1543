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
from dataclasses import asdict, dataclass, field, fields, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from morphlib.config import RECOMMENDED, RECOMMENDED_STRENGTH, REGIMES
from morphlib.stopping import CHOICES as GOAL_CHOICES
from morphlib.transforms import BANDWIDTHS

assert RECOMMENDED_STRENGTH.goal is not None
#: The default stopping rule of auto mode, as a spec (one of :data:`GOAL_CHOICES`).
RECOMMENDED_GOAL = RECOMMENDED_STRENGTH.goal.spec

#: Edit families offered by the app, default (:data:`morphlib.config.RECOMMENDED`) first.
FAMILIES: tuple[str, ...] = ("csp-joint", "csp-phase", "fourier-phase", "pixel")
#: How strength is given: searched, as an L2 budget, or as a raw amplification.
MODES: tuple[str, ...] = ("auto", "budget", "alpha")
MAX_FRAMES = 64
MAX_ORIENTATIONS = 8
#: Largest ``strength``: far beyond any reachable L2 budget (an RGB 224 px image spans at most
#: 388) or useful amplification, and small enough that no product with a gradient overflows.
MAX_STRENGTH = 10_000.0

#: Gradio's own query parameters (``?view=api``, ``?__theme=dark``...), not settings: skipped silently.
GRADIO_PARAMS = frozenset({"view"})

__all__ = [
    "FAMILIES",
    "MAX_FRAMES",
    "MAX_STRENGTH",
    "MODES",
    "SPECS",
    "UI_SETTINGS",
    "Settings",
    "Spec",
    "Widget",
    "parse_bool",
]


@dataclass(frozen=True)
class Widget:
    """How the app shows a setting; ``app.py`` turns it into a Gradio component (no Gradio here).

    ``kind`` is ``"dropdown"``, ``"radio"``, ``"number"``, ``"slider"`` or ``"checkbox"``; a radio,
    and a dropdown without choices of its own (the app fills in models and labels), take the
    setting's ``choices``; a slider and a number its bounds.
    """

    kind: str
    label: str
    info: str = ""
    elem_id: str | None = None
    step: float | None = None


@dataclass(frozen=True)
class Spec:
    """One setting: its name, type (``"str"``, ``"float"``, ``"int"``, ``"bool"``), default, allowed
    values (``choices``, or ``low``..``high``), permalink parameter and widget (``None``: not shown)."""

    name: str = ""
    type: str = "str"
    default: object = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    query: str = ""
    widget: Widget | None = None


def _setting(default: object, **spec: object) -> object:
    return field(default=default, metadata={"spec": Spec(**spec)})


@dataclass(frozen=True)
class Settings:
    """Everything that decides a morph in the app.

    Each field's :class:`Spec` (its bounds, its permalink parameter, its widget) is in the
    field's metadata: :data:`SPECS` collects them, and the validation, the permalinks and
    the app's widgets and handlers all read that one list.

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
        ``auto``: the morph ends where the stopping rule ``goal`` says, searched up to an RMS
        change of ``strength``;
        ``budget``: ``strength`` is the L2 distance of the last frame from the input;
        ``alpha``: ``strength`` is the raw amplification.
    strength : float
        See ``mode``; 0 means the default: a budget of RMS 0.05 per value in ``budget`` mode,
        a search cap of :data:`~morphlib.config.AUTO_MAX_RMS` in ``auto`` mode (the cap is an RMS
        change per value, as in the library and the CLI; ``alpha`` mode needs a value).
    goal : str
        ``auto`` mode's stopping rule, a :class:`~morphlib.stopping.Goal` spec of
        :data:`~morphlib.stopping.CHOICES` (``top-1``, ``p0.9``, ``top-1+50%``, ...).
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

    model: str = _setting(
        "",
        widget=Widget(
            "dropdown",
            "Model",
            "✓ ready offline · ⬇ downloaded from the Hugging Face Hub on first use",
            elem_id="model",
        ),
    )
    target: str = _setting(
        "",
        widget=Widget("dropdown", "Target class", "type to search; default: the runner-up", elem_id="target"),
    )
    example: str = _setting("")
    family: str = _setting(
        RECOMMENDED.family, choices=FAMILIES, widget=Widget("radio", "Edit family", elem_id="family")
    )
    regime: str = _setting(
        RECOMMENDED.regime, choices=REGIMES, widget=Widget("radio", "Regime", elem_id="regime")
    )
    mode: str = _setting(
        "auto",
        choices=MODES,
        widget=Widget("radio", "Strength", "auto: smallest budget where the target wins", elem_id="mode"),
    )
    strength: float = _setting(
        0.0,
        low=0.0,
        high=MAX_STRENGTH,
        widget=Widget(
            "number",
            "L2 budget / amplification / auto cap",
            f"0 = default (RMS 0.05; auto: cap RMS {RECOMMENDED_STRENGTH.cap_rms:g})",
            elem_id="strength",
        ),
    )
    goal: str = _setting(
        RECOMMENDED_GOAL,
        choices=GOAL_CHOICES,
        widget=Widget(
            "dropdown",
            "auto: stop at",
            "top-1: the target wins · p0.9: it reaches p 0.9 · top-1+50%: on to 1.5× that distance · "
            "plateau: once it wins, where p stops rising · margin: log-odds over the runner-up · "
            "cap: the whole path",
            elem_id="goal",
        ),
    )
    frames: int = _setting(16, low=2, high=MAX_FRAMES, widget=Widget("slider", "Frames", elem_id="frames"))
    orientations: int = _setting(
        0,
        low=0,
        high=MAX_ORIENTATIONS,
        widget=Widget("slider", "Orientations", "0 = 4 (octave) or 8 (sub-octave)", elem_id="orientations"),
    )
    bandwidth: str = _setting(
        "octave", choices=tuple(sorted(BANDWIDTHS)), widget=Widget("radio", "Bandwidth", elem_id="bandwidth")
    )
    luma_only: bool = _setting(
        RECOMMENDED.luma_only,
        query="luma",
        widget=Widget("checkbox", "Luma only (keep the colours)", elem_id="luma-only"),
    )
    phase_cap: float = _setting(
        0.0,
        low=0.0,
        high=100.0,
        query="cap",
        widget=Widget("number", "Phase cap (radians, 0 = none)", elem_id="phase-cap"),
    )
    smooth_sigma: float = _setting(
        RECOMMENDED.smooth_sigma,
        low=0.0,
        high=100.0,
        query="smooth",
        widget=Widget("number", "Phase smoothing σ (0 = none)", elem_id="smooth-sigma"),
    )

    def validated(self) -> Settings:
        """The same settings with normalised types; raises ValueError naming the bad one."""
        problems = [
            msg for spec in SPECS.values() if (msg := _check(spec, getattr(self, spec.name))) is not None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return replace(self, **{name: _TYPES[spec.type](getattr(self, name)) for name, spec in SPECS.items()})

    @classmethod
    def from_ui(cls, values: Mapping[str, object]) -> Settings:
        """Validated settings from the app's widget values (or an API call's), by setting name:
        an empty value means the default; texts are stripped, numbers and booleans parsed."""
        parsed = {}
        for name, value in values.items():
            spec = SPECS[name]
            if value is None or (value == "" and spec.type != "str"):
                parsed[name] = spec.default
            elif spec.type == "str":
                parsed[name] = str(value)
            else:
                parsed[name] = value if isinstance(value, bool | int | float) else _parse(name, str(value))
                if spec.type == "int" and not isinstance(parsed[name], bool):
                    if float(parsed[name]) != int(float(parsed[name])):
                        raise ValueError(f"{name} must be an integer, got {value}")
                    parsed[name] = int(float(parsed[name]))
        return cls(**parsed).validated()

    # ------------------------------------------------------------------ permalinks
    def to_query(self) -> str:
        """URL query string: model, target and example when set, then every non-default setting."""
        pairs = []
        for name, spec in SPECS.items():
            value = getattr(self, name)
            if value != spec.default or (name in ALWAYS_LINKED and value not in ("", None)):
                pairs.append((spec.query, _format(value)))
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
        values: dict[str, object] = {}
        warnings = []
        for key, raw in items:
            if key == "run" or key in GRADIO_PARAMS or key.startswith("__"):
                continue
            spec = _BY_QUERY.get(key)
            if spec is None:
                warnings.append(f"ignored unknown parameter {key!r}")
                continue
            try:
                value = _parse(spec.name, str(raw))
                problem = _check(spec, value)
            except ValueError as err:
                problem = str(err)
            if problem is not None:
                warnings.append(f"ignored {key}={raw!r}: {problem}")
                continue
            values[spec.name] = value
        return cls(**values), warnings

    def as_dict(self) -> dict:
        return asdict(self)


#: Every setting's :class:`Spec`, in field order, with its name, type, default and permalink
#: parameter filled in from the field.
SPECS: dict[str, Spec] = {
    f.name: replace(
        f.metadata["spec"],
        name=f.name,
        type=f.type,
        default=f.default,
        query=f.metadata["spec"].query or f.name,
    )
    for f in fields(Settings)
}
#: The settings the app shows, in the order of the API endpoints' named parameters.
UI_SETTINGS: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.widget is not None)
#: Settings a permalink carries even at their default (when set).
ALWAYS_LINKED = ("model", "target", "example")
_BY_QUERY = {spec.query: spec for spec in SPECS.values()}
_TYPES = {"str": lambda v: str(v).strip(), "float": float, "int": int, "bool": bool}


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
    kind = SPECS[name].type
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


def _odd_digits(text: str) -> bool:
    """Whether ``text`` is a number only to ``str.isdigit`` (``"²"``, ``"٣"``): not an index ``int`` reads."""
    key = text.strip().lstrip("-")
    return key.isdigit() and not (key.isascii() and key.isdecimal())


def _check(spec: Spec, value: object) -> str | None:
    """A message if ``value`` is not valid for the setting ``spec``, else ``None``."""
    name = spec.name
    if spec.choices:
        if value not in spec.choices:
            return f"unknown {name} {value!r}; choose one of {', '.join(spec.choices)}"
        return None
    if spec.type == "str":
        if not isinstance(value, str | int) or len(str(value)) > 200:
            return f"{name} is not a short text"
        if name == "target" and _odd_digits(str(value)):
            return f"unknown class {value!r}; give a label name or an index written with the digits 0-9"
        return None
    if spec.type == "bool":
        return None if isinstance(value, bool | int) and value in (0, 1) else f"{name} must be true or false"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if spec.type == "int" and float(value) != int(value):
        return f"{name} must be an integer, got {value!r}"
    low, high = spec.low, spec.high
    if not math.isfinite(float(value)) or value < low or (high is not None and value > high):
        upper = f" and at most {high:g}" if high is not None else ""
        return f"{name} must be at least {low:g}{upper}, got {value!r}"
    if name == "orientations" and value == 1:  # a pyramid needs 2 or more; 0 is the default
        return "orientations must be 0 (default) or 2 to 8, got 1"
    return None
