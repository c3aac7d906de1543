"""morphlib's Gradio app: how would this classifier change the image to make it another class?

Layout and wiring only; the work is done by :class:`morphlib.app.engine.Engine`.

    python app.py                 # http://127.0.0.1:7860
    python app.py --share         # also ask Gradio for a public link (needs internet)
    python app.py --port 8000 --host 0.0.0.0 --zoo my-zoo.yaml

Named endpoints (``gradio_client``): ``/models``, ``/predict``, ``/morph``, ``/frame``,
``/compare``, ``/permalink``, ``/restore``; see the README's "App" section.
"""

from __future__ import annotations

import argparse
import base64
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from morphlib.app.engine import Engine, ModelRegistry, MorphOutput, device_problem, video_side  # noqa: E402
from morphlib.app.examples import EXAMPLES_DIR, Example, example_by_name, find_example, load_examples  # noqa: E402
from morphlib.app.images import MAX_BYTES  # noqa: E402
from morphlib.app.settings import (  # noqa: E402
    FAMILIES,
    MAX_FRAMES,
    MAX_PROB,
    MODES,
    Settings,
    parse_bool,
    wants_run,
)
from morphlib.morph import REGIMES  # noqa: E402
from morphlib.render import annotated_frames  # noqa: E402
from morphlib.transforms import BANDWIDTHS  # noqa: E402

log = logging.getLogger("morphlib.app")

try:  # Hugging Face ZeroGPU: run the heavy calls on a GPU; elsewhere the decorator is a no-op
    import spaces

    gpu = spaces.GPU(duration=120)
except ImportError:  # not on a Space

    def gpu(fn: Callable) -> Callable:
        return fn


DEFAULT_EXAMPLE = "digit-3"
COMPUTE_LIMIT = int(os.environ.get("MORPHLIB_APP_CONCURRENCY", "2"))
INTRO = """# morphlib: how would this classifier change the image?
Pick an image and a model, choose a target class, and **Morph**: the classifier's own
gradient, taken with respect to the *phases* of a complex steerable pyramid, is amplified
into a short video from the input toward the target (the method of "Through a Steerable
Lens", Mahdisoltani et al., 2025). Compare it with pixel and Fourier edits in
**Compare families**.
"""
SETTING_NAMES = (
    "model",
    "target",
    "family",
    "regime",
    "mode",
    "strength",
    "prob",
    "frames",
    "orientations",
    "bandwidth",
    "luma_only",
    "phase_cap",
    "smooth_sigma",
)

ENGINE: Engine | None = None
DEMO: gr.Blocks | None = None


def raw_file(payload: Any) -> str | bytes | None:
    """What the image input hands to the handlers: the uploaded file untouched (its path, or the
    bytes of a data URL), so that ``morphlib.app.images`` decodes it, with its size and
    decompression-bomb limits and its messages, instead of Gradio's own PIL decoding."""
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        encoded = url.split(",", 1)[-1]
        if len(encoded) > MAX_BYTES * 4 // 3 + 4:
            raise gr.Error(f"the image is larger than {MAX_BYTES // 2**20} MB; upload a smaller one")
        try:
            return base64.b64decode(encoded, validate=False)
        except ValueError:
            raise gr.Error("the pasted image data is not valid base64") from None
    if not getattr(payload, "path", None):
        raise gr.Error("no image file was received; upload it again")
    return str(payload.path)


def image_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` whose preprocessing is :func:`raw_file`.

    Set on the instance (a subclass would make Gradio write an ``app.pyi`` stub next to this
    file); the app never sends ``gr.update`` to this component, which would rebuild it.
    """
    component = gr.Image(**kwargs)
    component.preprocess = raw_file  # type: ignore[method-assign]
    return component


# ---------------------------------------------------------------------- helpers
def friendly(fn: Callable) -> Callable:
    """Errors a user can cause become a message in the UI (``gr.Error``); anything else is logged
    and reported in one line, never as a stack trace, and the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as err:  # ImageError, ModelUnavailableError, bad settings, unknown class...
            raise gr.Error(str(err), title="Cannot do that") from None
        except Exception as err:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"something went wrong on the server ({type(err).__name__}); the app is still running — "
                "try again, or another image or setting",
                title="Server error",
            ) from None

    return wrapper


def engine() -> Engine:
    global ENGINE
    if ENGINE is None:
        ENGINE = Engine()
    return ENGINE


def settings_from(*values: Any) -> Settings:
    """Settings from the UI values, in :data:`SETTING_NAMES` order (the image is separate)."""
    raw = dict(zip(SETTING_NAMES, values, strict=True))
    raw["target"] = "" if raw["target"] is None else str(raw["target"])
    raw["model"] = "" if raw["model"] is None else str(raw["model"])
    for name in ("strength", "prob", "phase_cap", "smooth_sigma"):
        raw[name] = 0.0 if raw[name] in (None, "") else float(raw[name])
    for name in ("frames", "orientations"):
        value = raw[name]
        if value in (None, ""):
            raw[name] = Settings.__dataclass_fields__[name].default
        elif float(value) != int(float(value)):
            raise ValueError(f"{name} must be an integer, got {value}")
        else:
            raw[name] = int(float(value))
    raw["luma_only"] = False if raw["luma_only"] in (None, "") else parse_bool("luma_only", raw["luma_only"])
    return Settings(**raw).validated()


def base_url(request: gr.Request | None) -> str:
    """The address users reach the app at: the share link when there is one, else the request's host."""
    if DEMO is not None and getattr(DEMO, "share_url", None):
        return DEMO.share_url.rstrip("/") + "/"
    if request is None:
        return "/"
    headers = getattr(request, "headers", {}) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "localhost:7860"
    try:
        scheme = request.url.scheme  # type: ignore[union-attr]
    except Exception:
        scheme = "http"
    proto = headers.get("x-forwarded-proto") or scheme or "http"
    return f"{proto.split(',')[0].strip()}://{host.split(',')[0].strip()}/"


def example_model(example: Example) -> str:
    """The example's model, or another available model of the same label set when it is not available."""
    registry = engine().registry
    choices = registry.choices()
    wanted = next((c for c in choices if c.id == example.model), None)
    if wanted is None or wanted.available:
        return example.model
    dataset = wanted.entry.dataset if wanted.entry is not None else None
    same = [c.id for c in choices if c.available and c.entry is not None and c.entry.dataset == dataset]
    return same[0] if same else example.model


def model_choices() -> list[tuple[str, str]]:
    return [(c.label, c.id) for c in engine().registry.choices()]


def top5_value(top: list[tuple[str, float]]) -> dict[str, float]:
    return {label: prob for label, prob in top}


# ---------------------------------------------------------------------- handlers
@friendly
def predict(image: str | bytes | None, model: str) -> tuple[dict, Any, str]:
    """Top-5 classes of the image under the model, and its labels as the target list.

    Returns the top-5 (label: probability), the target dropdown (every label; value: the
    runner-up) and a status message.
    """
    if image is None:
        return {}, gr.update(), "Upload an image, paste one, use the webcam or pick an example."
    p = engine().predict(image, model)
    lines = [f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}** (runner-up)."]
    lines += [f"- {note}" for note in p.notes]
    target = gr.update(choices=p.labels, value=p.suggestion)
    return top5_value(p.top), target, "\n".join(lines)


CLEARED_MORPH = (None, None, None, None, None, None, None)  # video, GIF, frame, plot, change, numbers, result


def pick_example(image: str | bytes | None, model: str) -> tuple:
    """An example picked in the UI: its prediction, and the previous morph's outputs cleared (they
    belong to another image). When the prediction fails (e.g. a photo example whose Hub model cannot
    be downloaded now), the top-5 is cleared too and the status says why: no output keeps showing
    the previous answer."""
    try:
        top, target, message = predict(image, model)
    except gr.Error as err:
        gr.Warning(str(err.message))
        top, target, message = {}, gr.update(), f"⚠ {err.message}"
    slider = gr.update(minimum=0, maximum=1, value=0, interactive=False)
    return (top, target, message, *CLEARED_MORPH[:2], slider, *CLEARED_MORPH[2:])


def describe_model(model: str) -> str:
    """The picked model's description, and what loading it takes (never fails: it only reads the zoo)."""
    try:
        return engine().registry.describe(model)
    except ValueError as err:
        return f"⚠ {err}"


@gpu
def _run_morph(image: Any, settings: Settings, progress: Any) -> MorphOutput:
    return engine().morph(image, settings, progress=lambda f, d: progress(f, desc=d))


@friendly
def run_morph(
    image: str | bytes | None,
    model: str,
    target: str,
    family: str,
    regime: str,
    mode: str,
    strength: float,
    prob: float,
    frames: int,
    orientations: int,
    bandwidth: str,
    luma_only: bool,
    phase_cap: float,
    smooth_sigma: float,
    request: gr.Request,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio's progress idiom
) -> tuple:
    """Morph the image toward the target class.

    Returns the looping video (MP4, forward and back, probabilities drawn on each frame),
    the GIF, the frame scrubber, the last frame, the probability plot, the change map, a
    JSON summary (per-frame alpha, L2, source and target probabilities, top-5), a message,
    the permalink, and the L2 budget for the compare view.
    """
    s = settings_from(
        model,
        target,
        family,
        regime,
        mode,
        strength,
        prob,
        frames,
        orientations,
        bandwidth,
        luma_only,
        phase_cap,
        smooth_sigma,
    )
    if image is None:
        raise gr.Error("no image: upload one, paste one, use the webcam or pick an example")
    out = _run_morph(image, s, progress)
    r = out.result
    n = len(r.frames)
    last = annotated_frames(r, min_side=video_side(r), indices=[n - 1])[0]
    example = find_example(image) if isinstance(image, str) else None
    link = _link(s, example, request)
    slider = gr.update(minimum=0, maximum=n - 1, value=n - 1, step=1, interactive=True)
    return (
        str(out.video),
        str(out.gif),
        slider,
        last,
        str(out.plot),
        str(out.change),
        out.summary,
        out.message,
        link,
        round(float(r.l2[-1]), 4),
        r,
    )


@friendly
def show_frame(index: float, result: Any) -> Any:
    """One frame of the last morph (this session's), with its probabilities drawn."""
    if result is None:
        raise gr.Error("morph an image first; the scrubber shows its frames")
    n = len(result.frames)
    k = int(round(float(index or 0)))
    if not 0 <= k < n:
        raise gr.Error(f"frame {k} does not exist; the morph has frames 0 to {n - 1}")
    return annotated_frames(result, min_side=video_side(result), indices=[k])[0]


@gpu
def _run_compare(image: Any, settings: Settings, budget: float, progress: Any) -> Any:
    return engine().compare(image, settings, budget=budget, progress=lambda f, d: progress(f, desc=d))


@friendly
def run_compare(
    image: str | bytes | None,
    model: str,
    target: str,
    budget: float,
    family: str,
    regime: str,
    mode: str,
    strength: float,
    prob: float,
    frames: int,
    orientations: int,
    bandwidth: str,
    luma_only: bool,
    phase_cap: float,
    smooth_sigma: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008
) -> tuple:
    """Pixel, Fourier phase, CSP phase and joint CSP edits side by side at one L2 budget (0: default).

    Returns the side-by-side video, a table (family, L2, p(source), p(target), top-1, note)
    and a message.
    """
    s = settings_from(
        model,
        target,
        family,
        regime,
        mode,
        strength,
        prob,
        frames,
        orientations,
        bandwidth,
        luma_only,
        phase_cap,
        smooth_sigma,
    )
    if image is None:
        raise gr.Error("no image: upload one, paste one, use the webcam or pick an example")
    out = _run_compare(image, s, float(budget or 0.0), progress)
    return str(out.video), out.rows, out.message


def _link(s: Settings, example: Example | None, request: gr.Request | None) -> str:
    from dataclasses import replace

    return replace(s, example=example.name if example else "").link(base_url(request))


@friendly
def permalink(
    image: str | bytes | None,
    model: str,
    target: str,
    family: str,
    regime: str,
    mode: str,
    strength: float,
    prob: float,
    frames: int,
    orientations: int,
    bandwidth: str,
    luma_only: bool,
    phase_cap: float,
    smooth_sigma: float,
    request: gr.Request,
) -> str:
    """The link that restores the current settings (and the image, when it is an example)."""
    s = settings_from(
        model,
        target,
        family,
        regime,
        mode,
        strength,
        prob,
        frames,
        orientations,
        bandwidth,
        luma_only,
        phase_cap,
        smooth_sigma,
    )
    example = find_example(image) if isinstance(image, str) else None
    return _link(s, example, request)


@friendly
def restore(query: str) -> dict:
    """Settings from a permalink (a URL or its query string), as a dict, with the example image's
    path and any warnings about parameters that were ignored."""
    if not isinstance(query, str):
        raise ValueError(
            f"restore takes a permalink (a URL or its query string) as text, got {type(query).__name__}"
        )
    settings, warnings = Settings.from_query(query)
    image = None
    if settings.example:
        try:
            example = example_by_name(settings.example)
            image = str(example.file)
            if not settings.model:
                settings = _with(settings, model=example_model(example))
        except ValueError as err:
            warnings.append(str(err))
    if not settings.model:
        settings = _with(settings, model=engine().registry.default())
    return {"settings": settings.as_dict(), "image": image, "run": wants_run(query), "warnings": warnings}


def _with(s: Settings, **changes: Any) -> Settings:
    from dataclasses import replace

    return replace(s, **changes)


def list_models() -> list[dict]:
    """Every model of the zoo: id, name, whether it loads now, and where its weights are."""
    return [
        {"id": c.id, "name": c.name, "available": c.available, "location": c.location, "label": c.label}
        for c in engine().registry.choices()
    ]


# ---------------------------------------------------------------------- layout
def create_demo(eng: Engine | None = None, concurrency: int = COMPUTE_LIMIT) -> gr.Blocks:
    """Build the Blocks app around ``eng`` (default: the repository's zoo); at most ``concurrency``
    morphs and comparisons are computed at once."""
    global ENGINE, DEMO
    ENGINE = eng or ENGINE or Engine()
    registry = ENGINE.registry
    examples = load_examples()
    default_model = registry.default()
    default_labels = _labels_of(default_model)
    defaults = Settings()

    with gr.Blocks(title="morphlib: steerable-pyramid morphs", delete_cache=(900, 3600)) as demo:
        result_state = gr.State(None, time_to_live=3600)
        run_flag = gr.State(False)
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                image = image_input(
                    label="Input image (upload, paste or webcam)",
                    sources=["upload", "clipboard", "webcam"],
                    type="filepath",
                    height=260,
                    elem_id="input-image",
                )
                examples_box = gr.Column()  # filled below, once every component the examples touch exists
                model = gr.Dropdown(
                    choices=model_choices(),
                    value=default_model,
                    label="Model",
                    info="✓ ready offline · ⬇ downloaded from the Hugging Face Hub on first use",
                    allow_custom_value=True,
                    elem_id="model",
                )
                model_info = gr.Markdown(
                    registry.describe(default_model), label="Model info", elem_id="model-info"
                )
                top5 = gr.Label(label="Top-5 predictions", num_top_classes=5, elem_id="top5")
                target = gr.Dropdown(
                    choices=default_labels,
                    value=None,
                    label="Target class",
                    info="type to search; default: the runner-up",
                    filterable=True,
                    allow_custom_value=True,
                    elem_id="target",
                )
                family = gr.Radio(
                    list(FAMILIES), value=defaults.family, label="Edit family", elem_id="family"
                )
                regime = gr.Radio(list(REGIMES), value=defaults.regime, label="Regime", elem_id="regime")
                with gr.Row():
                    mode = gr.Radio(
                        list(MODES),
                        value=defaults.mode,
                        label="Strength",
                        elem_id="mode",
                        info="auto: smallest budget where the target wins",
                    )
                    strength = gr.Number(
                        value=defaults.strength,
                        minimum=0,
                        label="L2 budget / amplification / auto cap",
                        info="0 = default (RMS 0.05; auto: cap RMS 0.2)",
                        elem_id="strength",
                    )
                with gr.Row():
                    prob = gr.Slider(
                        0,
                        MAX_PROB,
                        value=defaults.prob,
                        step=0.01,
                        label="auto: target probability",
                        info="0 = becomes top-1",
                        elem_id="prob",
                    )
                    frames = gr.Slider(
                        2, MAX_FRAMES, value=defaults.frames, step=1, label="Frames", elem_id="frames"
                    )
                with gr.Accordion("Advanced (steerable pyramid, colour, phase)", open=False):
                    orientations = gr.Slider(
                        0,
                        8,
                        value=defaults.orientations,
                        step=1,
                        label="Orientations",
                        info="0 = 4 (octave) or 8 (sub-octave)",
                    )
                    bandwidth = gr.Radio(sorted(BANDWIDTHS), value=defaults.bandwidth, label="Bandwidth")
                    luma_only = gr.Checkbox(value=defaults.luma_only, label="Luma only (keep the colours)")
                    phase_cap = gr.Number(
                        value=defaults.phase_cap, minimum=0, label="Phase cap (radians, 0 = none)"
                    )
                    smooth_sigma = gr.Number(
                        value=defaults.smooth_sigma, minimum=0, label="Phase smoothing σ (0 = none)"
                    )
                run = gr.Button("Morph", variant="primary", elem_id="run")
                status = gr.Markdown("", label="Status", elem_id="status")
            with gr.Column(scale=3, min_width=400):
                with gr.Tabs():
                    with gr.Tab("Morph"):
                        video = gr.Video(
                            label="Morph (loops forward and back)",
                            height=420,
                            autoplay=True,
                            loop=True,
                            interactive=False,
                            elem_id="video",
                        )
                        with gr.Row():
                            scrubber = gr.Slider(
                                0, 15, value=0, step=1, label="Frame", interactive=False, elem_id="scrubber"
                            )
                        frame = gr.Image(
                            label="Frame", type="numpy", interactive=False, height=320, elem_id="frame"
                        )
                        with gr.Row():
                            plot = gr.Image(
                                label="Source and target probability along the morph",
                                type="filepath",
                                interactive=False,
                            )
                            change = gr.Image(
                                label="Where the image changed (last frame)",
                                type="filepath",
                                interactive=False,
                            )
                        gif = gr.File(label="GIF download", interactive=False)
                        summary = gr.JSON(label="Numbers (per frame)", open=False)
                    with gr.Tab("Compare families"):
                        gr.Markdown(
                            "Pixel, Fourier phase, CSP phase and joint CSP edits at the **same L2 budget**."
                        )
                        with gr.Row():
                            budget = gr.Number(
                                value=0,
                                minimum=0,
                                label="L2 budget (0 = default, RMS 0.05)",
                                elem_id="compare-budget",
                            )
                            compare_button = gr.Button("Compare families", elem_id="compare")
                        compare_video = gr.Video(
                            label="Families side by side", autoplay=True, loop=True, interactive=False
                        )
                        compare_table = gr.Dataframe(
                            headers=["family", "L2", "p(source)", "p(target)", "top-1", "note"],
                            label="Last frame of each family",
                            interactive=False,
                            wrap=True,
                        )
                        compare_status = gr.Markdown("", label="Compare status")
                    with gr.Tab("Share & API"):
                        link = gr.Textbox(
                            label="Permalink to these settings",
                            buttons=["copy"],
                            interactive=False,
                            elem_id="permalink",
                        )
                        gr.Markdown(API_HELP)

        settings_inputs = [
            model,
            target,
            family,
            regime,
            mode,
            strength,
            prob,
            frames,
            orientations,
            bandwidth,
            luma_only,
            phase_cap,
            smooth_sigma,
        ]
        predict_outputs = [top5, target, status]
        # What a morph shows; picking another example clears these (pick_example).
        shown_outputs = [video, gif, scrubber, frame, plot, change, summary]
        morph_outputs = [*shown_outputs, status, link, budget, result_state]

        gr.on(
            [image.input, model.input],
            predict,
            inputs=[image, model],
            outputs=predict_outputs,
            api_name="predict",
            concurrency_limit=4,
        )
        if examples:
            with examples_box:
                gr.Examples(
                    examples=[[str(e.file), example_model(e)] for e in examples],
                    inputs=[image, model],
                    outputs=[*predict_outputs, *shown_outputs, result_state],
                    fn=pick_example,
                    run_on_click=True,
                    cache_examples=False,
                    example_labels=[e.caption or e.name for e in examples],
                    label="Examples: digits, gratings, shapes (bundled models); photos (ImageNet models)",
                    api_visibility="undocumented",
                    examples_per_page=12,
                )
        run.click(
            run_morph,
            inputs=[image, *settings_inputs],
            outputs=morph_outputs,
            api_name="morph",
            concurrency_id="compute",
            concurrency_limit=concurrency,
        )
        gr.on(
            [strength.submit, frames.release],
            morph_if,
            inputs=[result_state, image, *settings_inputs],
            outputs=morph_outputs,
            api_visibility="private",
            trigger_mode="always_last",
            concurrency_id="compute",
            concurrency_limit=concurrency,
        )
        scrubber.input(
            show_frame,
            inputs=[scrubber, result_state],
            outputs=frame,
            api_name="frame",
            trigger_mode="always_last",
            show_progress="hidden",
        )
        compare_button.click(
            run_compare,
            inputs=[image, model, target, budget, *settings_inputs[2:]],
            outputs=[compare_video, compare_table, compare_status],
            api_name="compare",
            concurrency_id="compute",
            concurrency_limit=concurrency,
        )
        gr.on(
            [image.change] + [c.change for c in settings_inputs],
            permalink,
            inputs=[image, *settings_inputs],
            outputs=link,
            api_name="permalink",
            show_progress="hidden",
            trigger_mode="always_last",
            concurrency_limit=None,
        )
        model.change(describe_model, inputs=model, outputs=model_info, api_visibility="private", queue=False)
        gr.api(restore, api_name="restore")
        gr.api(list_models, api_name="models")
        demo.load(
            on_load,
            inputs=None,
            outputs=[image, model, *settings_inputs[1:], top5, status, model_info, run_flag],
            api_visibility="private",
        ).then(
            morph_if,
            inputs=[run_flag, image, *settings_inputs],
            outputs=morph_outputs,
            api_visibility="private",
            concurrency_id="compute",
            concurrency_limit=concurrency,
        )
    DEMO = demo
    return demo


API_HELP = """
**HTTP / Python API.** Every action is a named endpoint: `/models`, `/predict`, `/morph`,
`/frame`, `/compare`, `/permalink`, `/restore` (parameters: *Use via API* in the footer).
With `gradio_client`:

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")  # this app's address
image = handle_file("digit.png")
top5, target, message = client.predict(image, "digits-cnn-robust", api_name="/predict")
video, gif, scrubber, frame, plot, change, summary, message, link, budget = client.predict(
    image=image, model="digits-cnn-robust", target="9", family="csp-phase",
    mode="budget", strength=4.0, frames=8, api_name="/morph",
)
```
"""


def _labels_of(model_id: str) -> list[str]:
    from morphlib.zoo import label_names

    try:
        entry = engine().registry.choice(model_id).entry
        return label_names(entry.dataset) if entry is not None else []
    except ValueError:
        return []


def on_load(request: gr.Request) -> tuple:
    """Page load: refresh the model list, then restore settings from the URL's query parameters."""
    params = dict(getattr(request, "query_params", {}) or {})
    restored = restore(_query_string(params)) if params else None
    if restored is None or (not restored["image"] and "model" not in params):
        example = next((e for e in load_examples() if e.name == DEFAULT_EXAMPLE), None)
        restored = restored or {"settings": Settings().as_dict(), "image": None, "run": False, "warnings": []}
        if example is not None and not restored["image"]:
            restored["image"] = str(example.file)
            restored["settings"]["model"] = restored["settings"]["model"] or example_model(example)
    s = dict(restored["settings"])
    s["model"] = s["model"] or engine().registry.default()
    choices = gr.update(choices=model_choices(), value=s["model"])
    top: dict = {}
    target_update: Any = gr.update(value=s["target"] or None)
    notes = [f"⚠ {w}" for w in restored["warnings"]]
    info = ""
    try:
        info = engine().registry.describe(s["model"])
        if restored["image"]:
            p = engine().predict(restored["image"], s["model"])
            top = top5_value(p.top)
            wanted = s["target"] if s["target"] else p.suggestion
            target_update = gr.update(choices=p.labels, value=wanted)
            notes.insert(0, f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}**.")
    except ValueError as err:  # a model that cannot be loaded, a bad link...: say so, keep the page
        notes.append(f"⚠ {err}")
    except Exception as err:  # never lose the page (and the link's other settings) to an unexpected error
        log.exception("unexpected error while restoring %r", params)
        notes.append(f"⚠ the image could not be classified on loading ({type(err).__name__}); try again")
    values = [s[name] for name in SETTING_NAMES[2:]]
    return (
        restored["image"],
        choices,
        target_update,
        *values,
        top,
        "\n\n".join(notes),
        info,
        bool(restored["run"] and restored["image"]),
    )


def _query_string(params: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def morph_if(
    gate: Any,
    image: str | bytes | None,
    model: str,
    target: str,
    family: str,
    regime: str,
    mode: str,
    strength: float,
    prob: float,
    frames: int,
    orientations: int,
    bandwidth: str,
    luma_only: bool,
    phase_cap: float,
    smooth_sigma: float,
    request: gr.Request,
    progress: gr.Progress = gr.Progress(),  # noqa: B008
) -> tuple:
    """Morph only when ``gate`` is set: a permalink with ``run=1`` was opened, or a result is
    shown and its strength or frame count changed (the gradient then comes from the cache)."""
    if not gate or image is None:
        return tuple(gr.skip() for _ in range(11))
    return run_morph(
        image,
        model,
        target,
        family,
        regime,
        mode,
        strength,
        prob,
        frames,
        orientations,
        bandwidth,
        luma_only,
        phase_cap,
        smooth_sigma,
        request,
        progress,
    )


# ---------------------------------------------------------------------- launch
def launch(
    demo: gr.Blocks,
    share: bool = False,
    host: str | None = None,
    port: int | None = None,
    block: bool = True,
    concurrency: int = COMPUTE_LIMIT,
    quiet: bool = False,
) -> tuple[str, str | None]:
    """Queue and launch ``demo``; returns (local URL, share URL or None).

    ``concurrency`` is the queue's default limit (events without their own); morphs and
    comparisons are bound by :func:`create_demo`'s ``concurrency``. A share link that cannot
    be made (no internet, share server unreachable) is reported and the app keeps serving
    locally.
    """
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    _, local_url, share_url = demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=True,
        quiet=quiet,
        max_file_size=MAX_BYTES,
        allowed_paths=[str(EXAMPLES_DIR)],
        show_error=True,  # messages of errors raised inside Gradio itself (e.g. a URL it cannot fetch)
    )
    if share and not share_url:
        print(
            "morphlib app: could not create a public share link (no internet access, or Gradio's share "
            f"server is unreachable). The app keeps serving locally at {local_url}",
            flush=True,
        )
    elif share_url:
        print(f"morphlib app: public link {share_url} (also local at {local_url})", flush=True)
    if block:
        demo.block_thread()
    return local_url, share_url


def exit_on_sigterm() -> None:
    """On SIGTERM, raise ``SystemExit`` (after any handler already installed, e.g. Gradio's), so
    that ``atexit`` handlers run; a no-op outside the main thread, where signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--share", action="store_true", help="also create a public gradio.live link (needs internet)"
    )
    parser.add_argument(
        "--host", default=None, help="address to listen on (default 127.0.0.1; $GRADIO_SERVER_NAME)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default 7860; $GRADIO_SERVER_PORT)")
    parser.add_argument("--zoo", type=Path, default=None, help="another model manifest (default: zoo.yaml)")
    parser.add_argument(
        "--device", default=os.environ.get("MORPHLIB_DEVICE", "auto"), help="auto, cpu or cuda"
    )
    parser.add_argument("--concurrency", type=int, default=COMPUTE_LIMIT, help="morphs computed at once")
    args = parser.parse_args(argv)
    problem = device_problem(args.device)
    if problem is not None:
        sys.exit(f"morphlib app: {problem}")
    if args.concurrency < 1:
        sys.exit(f"morphlib app: --concurrency must be at least 1, got {args.concurrency}")
    exit_on_sigterm()  # before the engine makes its temporary output folder
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo = create_demo(Engine(ModelRegistry(args.zoo, device=args.device)), concurrency=args.concurrency)
    launch(demo, share=args.share, host=args.host, port=args.port, concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
