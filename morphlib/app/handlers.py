"""The app's handlers: what each UI event and API endpoint does, in Gradio's terms.

``app.py`` lays out the page and wires its events to these functions; the work itself is done
by :class:`morphlib.app.engine.Engine` (one per process, set by ``app.create_demo``), and the
settings every handler takes are listed once in :mod:`morphlib.app.settings`.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import gradio as gr
import numpy as np
import pandas as pd

from .engine import Engine, MorphOutput
from .examples import Example, example_by_name, find_example
from .outputs import ResultStore
from .settings import MAX_STRENGTH, UI_SETTINGS, Settings, wants_run
from .ui import failed, friendly, md_text, takes_settings

log = logging.getLogger("morphlib.app")

try:  # Hugging Face ZeroGPU: run the heavy calls on a GPU; elsewhere the decorator is a no-op
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:  # not on a Space

    def gpu(fn: Callable) -> Callable:
        return fn


#: A ZeroGPU Space: each ``@spaces.GPU`` call runs in a forked process (see :func:`on_gpu`).
ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))
#: The page opens on the first of these examples whose model loads now (without a download).
START_EXAMPLES = ("cat", "mnist-3", "digit-3")
ON_SPACE = bool(os.environ.get("SPACE_ID"))
NUMBERS_HEADERS = ["frame", "α", "L2", "p(source)", "p(target)", "top-1"]


@dataclass
class Shown:
    """What the next action on a shown morph needs, and no more: the annotated frames (the scrubber,
    the GIF), the video (the GIF is written next to it) and the per-frame numbers (the table)."""

    frames: np.ndarray
    video: Path
    rows: list[list[Any]]
    gif: Path | None = None


#: Every session's last morph (:class:`Shown`); a session's state holds only its key. Bounded in
#: count and bytes and expired after an hour, whatever the number of sessions.
SHOWN = ResultStore(
    max_items=int(os.environ.get("MORPHLIB_APP_RESULTS", "64")),
    max_bytes=128 * 2**20,  # about 28 digit morphs of 16 frames (4.5 MB each), 10 ImageNet ones of 64
    ttl_s=3600.0,
    nbytes=lambda shown: shown.frames.nbytes,
)

#: The engine and the page of this process, set by ``app.create_demo``.
ENGINE: Engine | None = None
DEMO: gr.Blocks | None = None


# ---------------------------------------------------------------------- helpers
def engine() -> Engine:
    global ENGINE
    if ENGINE is None:
        ENGINE = Engine()
    return ENGINE


#: The app's public address (e.g. ``https://example.org/morph/``), where permalinks point.
ROOT_URL_VARIABLE = "MORPHLIB_APP_URL"
#: Set to 1 behind a proxy that sets ``X-Forwarded-Host`` and ``-Proto`` itself (never as sent by
#: a client): permalinks then use them.
TRUST_FORWARDED_VARIABLE = "MORPHLIB_APP_TRUST_FORWARDED"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


def configured_root() -> str | None:
    """The address set for the app: ``$MORPHLIB_APP_URL``, the share link, or the Space's own host."""
    if os.environ.get(ROOT_URL_VARIABLE):
        return os.environ[ROOT_URL_VARIABLE].rstrip("/") + "/"
    if DEMO is not None and getattr(DEMO, "share_url", None):
        return DEMO.share_url.rstrip("/") + "/"
    if os.environ.get("SPACE_HOST"):
        return f"https://{os.environ['SPACE_HOST'].split(',')[0].strip()}/"
    return None


def base_url(request: gr.Request | None) -> str:
    """The address permalinks start with: :func:`configured_root`, else the request's own host and
    scheme. ``X-Forwarded-*`` headers are used only when :data:`TRUST_FORWARDED_VARIABLE` says a
    proxy of ours sets them (a client can send any); a host that is not a host name is replaced."""
    root = configured_root()
    if root is not None:
        return root
    if request is None:
        return "/"
    headers = getattr(request, "headers", {}) or {}
    trusted = os.environ.get(TRUST_FORWARDED_VARIABLE, "").strip().lower() in ("1", "true", "yes")
    forwarded = (lambda name: headers.get(f"x-forwarded-{name}")) if trusted else (lambda name: None)
    # this server's own scheme: the request's may come from X-Forwarded-Proto already (uvicorn
    # takes it from any client on this machine)
    scheme = urlsplit(getattr(DEMO, "local_url", None) or "http://").scheme
    host = (forwarded("host") or headers.get("host") or "").split(",")[0].strip()
    proto = (forwarded("proto") or scheme or "http").split(",")[0].strip().lower()
    host = host if _HOST.match(host) else "localhost:7860"
    return f"{proto if proto in ('http', 'https') else 'http'}://{host}/"


def example_model(example: Example) -> str:
    """The example's model, or another available model of the same label set when it is not available."""
    choices = engine().registry.choices()
    wanted = next((c for c in choices if c.id == example.model), None)
    if wanted is None or wanted.available:
        return example.model
    dataset = wanted.entry.dataset if wanted.entry is not None else None
    same = [c.id for c in choices if c.available and c.entry is not None and c.entry.dataset == dataset]
    return same[0] if same else example.model


def loadable(model_id: str) -> bool:
    """Whether the model loads now without a download (bundled, cached or preloaded)."""
    try:
        return engine().registry.choice(model_id).available
    except ValueError:
        return False


def start_example() -> Example | None:
    """The example the page opens on: the first of :data:`START_EXAMPLES` whose own model loads now (the
    cat only with the robust ResNet-50: a standard model's morphs look adversarial, a poor first sight)."""
    for name in START_EXAMPLES:
        try:
            example = example_by_name(name)
        except ValueError:
            continue
        if loadable(example.model):
            return example
    return None


def model_choices() -> list[tuple[str, str]]:
    return [(c.label, c.id) for c in engine().registry.choices()]


def labels_of(model_id: str) -> list[str]:
    """The model's class names from the zoo (nothing is loaded); empty when unknown."""
    from morphlib.zoo import label_names

    try:
        entry = engine().registry.choice(model_id).entry
        return label_names(entry) if entry is not None else []
    except ValueError:
        return []


def top5_value(top: list[tuple[str, float]]) -> dict[str, float]:
    return {label: prob for label, prob in top}


def example_of(image: Any) -> Example | None:
    return find_example(image) if isinstance(image, str) else None


def link_for(s: Settings, image: Any, request: gr.Request | None) -> str:
    example = example_of(image)
    return replace(s, example=example.name if example else "").link(base_url(request))


# ---------------------------------------------------------------------- handlers
@friendly
def predict(
    image: str | bytes | None, model: str, request: gr.Request | None = None
) -> tuple[dict, Any, str]:
    """Top-5 classes of the image under the model, and its labels as the target list.

    Returns the top-5 (label: probability), the target dropdown (every label; value: the
    runner-up) and a status message.
    """
    if image is None:
        return {}, gr.update(), "Upload an image, paste one, use the webcam or pick an example."
    Settings.from_ui({"model": model})  # a model id is a short text (the message then quotes it)
    p = engine().predict(image, model)
    lines = [f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}** (runner-up)."]
    lines += [f"- {note}" for note in p.notes]
    target = gr.update(choices=p.labels, value=p.suggestion)
    return top5_value(p.top), target, "\n".join(lines)


#: The plot of no morph: both classes, no point. The page's plot takes its colours and legend
#: from the classes of the first data it draws and keeps them: cleared to an empty table, it drew
#: every later morph without colours; cleared to None, it raises errors in the page.
NO_PLOT = pd.DataFrame({"α": [0.0, 0.0], "probability": [math.nan, math.nan], "class": ["source", "target"]})
#: What a morph shows, cleared: video, GIF, scrubber, frame, plot, change map, summary, the
#: session's result (state) and the per-frame numbers.
CLEARED_MORPH = (
    None,
    None,
    gr.update(minimum=1, maximum=2, value=1, interactive=False),
    None,
    NO_PLOT,
    *[None] * 4,
)


def plot_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """The morph's probability curves with the classes named ``source`` and ``target`` (the labels
    are in the status line): the same classes for every morph (see :data:`NO_PLOT`)."""
    return curves.assign(**{"class": curves["class"].str.split(":").str[0]})


def pick_example(image: str | bytes | None, model: str) -> tuple:
    """An example picked in the UI: its prediction, and the previous morph's outputs cleared (they
    belong to another image). When the prediction fails (e.g. a photo example whose Hub model cannot
    be downloaded now), the top-5 is cleared too and the status says why: no output keeps showing
    the previous answer."""
    try:
        top, target, message = unfriendly(predict)(image, model)
    except (ValueError, gr.Error) as err:  # shown once, in the status line (not also as a toast)
        reason = not_downloadable(model) or md_text(err.message if isinstance(err, gr.Error) else err)
        top, target, message = {}, gr.update(choices=labels_of(model), value=None), f"⚠ {reason}"
    return (top, target, message, *CLEARED_MORPH)


def unfriendly(fn: Callable) -> Callable:
    """``fn`` without :func:`~morphlib.app.ui.friendly`: its errors raised as they are."""
    return getattr(fn, "__wrapped__", fn)


def not_downloadable(model: str) -> str | None:
    """A short Markdown line when ``model`` needs a download that cannot happen here (offline), else None."""
    from morphlib.zoo.hub import offline

    try:
        choice = engine().registry.choice(model)
    except ValueError:
        return None
    if choice.available or choice.location != "download" or not offline():
        return None
    return (
        f"**{md_text(choice.name)}** is not on this machine and this app is offline, so it cannot be "
        "downloaded: pick a model marked ✓."
    )


def predict_failed(model: str, request: gr.Request) -> tuple:
    """After a failed /predict (a bad upload, a model that cannot load): no top-5, the chosen
    model's labels (from the zoo) as the targets, the reason, and no morph of another input."""
    target = gr.update(choices=labels_of(model), value=None)
    status = failed("Classifying the image", request)
    short = not_downloadable(model)  # offline, the long how-to-fetch message helps no one here
    return ({}, target, f"⚠ {short}" if short else status, *CLEARED_MORPH)


def morph_failed(request: gr.Request) -> tuple:
    return (*CLEARED_MORPH, failed("The morph", request))


def compare_failed(request: gr.Request) -> tuple:
    return None, None, failed("The comparison", request)


def describe_model(model: str) -> str:
    """The picked model's description, and what loading it takes (never fails: it only reads the zoo)."""
    try:
        return engine().registry.describe(model)
    except ValueError as err:  # an unknown id, as typed: shown, never rendered
        return f"⚠ {md_text(err)}"


def on_gpu(fn: Callable, decorator: Callable = gpu, forked: bool = ZERO_GPU) -> Callable:
    """``fn`` run through ``decorator`` (``spaces.GPU``). On ZeroGPU that call runs in a forked
    process, so what it caches is gone when it returns: the gradients it computed come back
    with its result and are kept in this process's cache (the models were loaded here at
    start by ``app.main``), so that the next call neither reloads nor recomputes them."""
    if not forked:
        return decorator(fn)

    @decorator
    def remote(*args: Any) -> tuple[Any, list]:
        return fn(*args), engine().cache.export()

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        out, gradients = remote(*args)
        engine().cache.add_exported(gradients)
        return out

    return call


def _morph_call(image: Any, settings: Settings, progress: Any) -> MorphOutput:
    return engine().morph(image, settings, progress=lambda f, d: progress(f, desc=d))


_run_morph = on_gpu(_morph_call)


def numbers_table(key: str | None) -> list[list[Any]] | None:
    """The per-frame numbers of this session's shown morph (``key``), as table rows."""
    shown = SHOWN.get(key)
    return shown.rows if shown is not None else None


def numbers_rows(out: MorphOutput) -> list[list[Any]]:
    """The morph's per-frame numbers as table rows (:data:`NUMBERS_HEADERS`; frames counted from 1,
    as the video counts them)."""
    r = out.result
    return [
        [
            k + 1,
            round(float(r.alphas[k]), 4),
            round(float(r.l2[k]), 4),
            round(float(r.source_probs[k]), 4),
            round(float(r.target_probs[k]), 4),
            r.top1[k],
        ]
        for k in range(len(r.frames))
    ]


@friendly
@takes_settings()
def run_morph(image: str | bytes | None, s: Settings, request: gr.Request, progress: Any) -> tuple:
    """Morph the image toward the target class.

    Returns the looping video (MP4, forward and back, probabilities drawn on each frame),
    the GIF (none: ask ``/gif``), the frame scrubber, the last frame, the probability plot's
    data, the change map, a JSON summary (per-frame alpha, L2, source and target
    probabilities, top-5), a message, the permalink, and the L2 budget for the compare view.
    (The UI shows the per-frame numbers as a table, made from this session's result.)
    """
    if image is None:
        raise gr.Error("no image: upload one, paste one, use the webcam or pick an example")
    out = _run_morph(image, s, progress)
    n = len(out.frames)
    slider = gr.update(minimum=1, maximum=n, value=n, step=1, interactive=True)
    key = SHOWN.put(Shown(out.frames, out.video, numbers_rows(out)))
    return (
        str(out.video),
        None,
        slider,
        str(engine().frame(out, n)),
        plot_curves(out.curves),
        str(out.change),
        out.summary,
        key,
        out.message,
        link_for(s, image, request),
        round(float(out.result.l2[-1]), 4),
    )


def shown_morph(key: str | None, what: str) -> Shown:
    """This session's shown morph; ``gr.Error`` saying why there is none (``what`` needs one)."""
    shown = SHOWN.get(key)
    if shown is not None:
        return shown
    if key:
        raise gr.Error(f"this morph is no longer kept (results expire after an hour); morph again: {what}")
    raise gr.Error(f"morph an image first; {what}")


@friendly
def show_frame(index: float, key: str | None) -> str:
    """Frame ``index`` (counted from 1) of this session's last morph, with its probabilities drawn
    (a PNG)."""
    shown = shown_morph(key, "the scrubber shows its frames")
    n = len(shown.frames)
    index = float(index or 0)
    k = int(round(index)) if math.isfinite(index) else 0
    if not 1 <= k <= n:
        raise gr.Error(f"there is no frame {index:g}; the morph has frames 1 to {n}")
    return str(engine().frame(shown, k))


@friendly
def make_gif(key: str | None) -> str:
    """The last morph (this session's) as a looping GIF, written when first asked for."""
    return str(engine().gif(shown_morph(key, "the GIF is made from its frames")))


def make_gif_clicked(key: str | None) -> Any:
    """*Make a GIF* in the page: the GIF, or, before any morph, a note (no error badge on the file)."""
    try:
        return make_gif(key)
    except gr.Error as err:
        gr.Info(err.message)
        return gr.skip()


#: The compare view's default budget, as an RMS change per value: at the library's default (0.05)
#: no family visibly changes a digit; at 0.15 each moves it, differently (the target wins or nearly).
COMPARE_RMS = 0.15


def compare_budget(model: str) -> float:
    """The compare view's default L2 budget for ``model``: :data:`COMPARE_RMS` over its RGB input;
    0 (the engine's default) for a model without a zoo entry."""
    try:
        entry = engine().registry.choice(model).entry
    except ValueError:
        return 0.0
    return COMPARE_RMS * math.sqrt(3 * math.prod(entry.input_size)) if entry is not None else 0.0


def _compare_call(image: Any, settings: Settings, budget: float, progress: Any) -> Any:
    return engine().compare(image, settings, budget=budget, progress=lambda f, d: progress(f, desc=d))


_run_compare = on_gpu(_compare_call)


@friendly
@takes_settings(extra=("budget",))
def run_compare(
    image: str | bytes | None, s: Settings, budget: float, request: gr.Request, progress: Any
) -> tuple:
    """Pixel, Fourier phase, CSP phase and joint CSP edits side by side at one L2 budget (0: default).

    Returns the side-by-side video, a table (family, L2, p(source), p(target), top-1, note)
    and a message.
    """
    if image is None:
        raise gr.Error("no image: upload one, paste one, use the webcam or pick an example")
    budget = float(budget or 0.0)
    if not 0.0 <= budget <= MAX_STRENGTH:  # NaN too
        raise gr.Error(f"the L2 budget must be between 0 (the default) and {MAX_STRENGTH:g}, got {budget:g}")
    out = _run_compare(image, s, budget or compare_budget(s.model), progress)
    return str(out.video), out.rows, out.message


@friendly
@takes_settings(progress=False)
def permalink(image: str | bytes | None, s: Settings, request: gr.Request) -> str:
    """The link that restores the current settings (and the image, when it is an example)."""
    return link_for(s, image, request)


@friendly
@takes_settings(leading=("gate", "image"))
def morph_if(gate: Any, image: Any, s: Settings, request: gr.Request, progress: Any) -> tuple:
    """Morph only when ``gate`` is set: a permalink with ``run=1`` was opened, or a result is
    shown and its strength or frame count changed (the gradient then comes from the cache)."""
    if not gate or image is None:
        return tuple(gr.skip() for _ in range(11))
    values = {name: getattr(s, name) for name in UI_SETTINGS}
    return run_morph(image, **values, request=request, progress=progress)


#: Longest permalink read (the app's own are a few hundred characters).
MAX_QUERY = 4096


@friendly
def restore(query: str) -> dict:
    """Settings from a permalink (a URL or its query string), as a dict, with the example image's
    path and any warnings about parameters that were ignored."""
    if not isinstance(query, str):
        raise ValueError(
            f"restore takes a permalink (a URL or its query string) as text, got {type(query).__name__}"
        )
    if len(query) > MAX_QUERY:
        raise ValueError(f"a permalink is at most {MAX_QUERY} characters; this one has {len(query)}")
    settings, warnings = Settings.from_query(query)
    image = None
    if settings.example:
        try:
            example = example_by_name(settings.example)
            image = str(example.file)
            if not settings.model:
                settings = replace(settings, model=example_model(example))
        except ValueError as err:
            warnings.append(str(err))
    if not settings.model:
        settings = replace(settings, model=engine().registry.default())
    return {"settings": settings.as_dict(), "image": image, "run": wants_run(query), "warnings": warnings}


def list_models() -> list[dict]:
    """Every model of the zoo: id, name, whether it loads now, and where its weights are."""
    return [
        {"id": c.id, "name": c.name, "available": c.available, "location": c.location, "label": c.label}
        for c in engine().registry.choices()
    ]


def on_load(request: gr.Request) -> tuple:
    """Page load: refresh the model list, then restore settings from the URL's query parameters
    (or open on :func:`start_example`). Nothing is downloaded: a model that would need a
    download is named, and loaded only when the user asks for a prediction or a morph."""
    params = dict(getattr(request, "query_params", {}) or {})
    too_long = len(urlencode(params)) > MAX_QUERY
    params = {} if too_long else params
    restored = restore(urlencode(params)) if params else None
    if restored is None or (not restored["image"] and "model" not in params):
        example = start_example()
        restored = restored or {"settings": Settings().as_dict(), "image": None, "run": False, "warnings": []}
        if example is not None and not restored["image"]:
            restored["image"] = str(example.file)
            restored["settings"]["model"] = restored["settings"]["model"] or example_model(example)
    s = dict(restored["settings"])
    s["model"] = s["model"] or engine().registry.default()
    choices = gr.update(choices=model_choices(), value=s["model"])
    top: dict = {}
    target_update: Any = gr.update(choices=labels_of(s["model"]), value=s["target"] or None)
    notes = [f"⚠ {md_text(w)}" for w in restored["warnings"]]
    if too_long:
        notes.append(f"⚠ the link is longer than {MAX_QUERY} characters: its settings were ignored")
    info = ""
    ready = False
    try:
        info = engine().registry.describe(s["model"])
        if restored["image"] and not loadable(s["model"]):
            notes.append(
                not_downloadable(s["model"])
                or f"⬇ {md_text(repr(s['model']))} is not on this machine yet: Morph (or pick it again) "
                "to download it."
            )
        elif restored["image"]:
            p = engine().predict(restored["image"], s["model"])
            top = top5_value(p.top)
            wanted = s["target"] if s["target"] else p.suggestion
            target_update = gr.update(choices=p.labels, value=wanted)
            notes.insert(0, f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}**.")
            ready = True
    except ValueError as err:  # a model that cannot be loaded, a bad link...: say so, keep the page
        notes.append(f"⚠ {md_text(err)}")
    except Exception as err:  # never lose the page (and the link's other settings) to an unexpected error
        log.exception("unexpected error while restoring %r", params)
        notes.append(f"⚠ the image could not be classified on loading ({type(err).__name__}); try again")
    values = [s[name] for name in UI_SETTINGS[2:]]
    return (
        restored["image"],
        choices,
        target_update,
        *values,
        top,
        "\n\n".join(notes),
        info,
        bool(restored["run"] and ready),
    )


def example_groups(examples: tuple[Example, ...]) -> list[tuple[list[Example], bool]]:
    """The examples whose model loads now, and the others; on a Space, the first group's outputs are
    cached lazily (on first use), the others never (their model may not be there)."""
    ready = [e for e in examples if loadable(example_model(e))]
    later = [e for e in examples if e not in ready]
    return [(group, ON_SPACE and group is ready) for group in (ready, later) if group]


def examples_label(group: list[Example]) -> str:
    """``Examples: photos (ImageNet models)`` and/or ``digits, gratings, shapes (bundled models)``."""
    entries = engine().registry.entries
    photos = [e.model in entries and entries[e.model].dataset == "imagenet-1k" for e in group]
    kinds = ["digits, gratings, shapes (bundled models)"] * (not all(photos))
    return "Examples: " + "; ".join(kinds + ["photos (ImageNet models)"] * any(photos))
