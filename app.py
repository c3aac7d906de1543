"""morphlib's Gradio app: how would this classifier change the image to make it another class?

Layout and wiring only: the settings, their widgets and their permalinks are listed once in
:mod:`morphlib.app.settings`, the work is done by :class:`morphlib.app.engine.Engine`.

    python app.py                 # http://127.0.0.1:7860
    python app.py --share         # also ask Gradio for a public link (needs internet)
    python app.py --port 8000 --host 0.0.0.0 --zoo my-zoo.yaml

Named endpoints (``gradio_client``): ``/models``, ``/predict``, ``/morph``, ``/frame``, ``/gif``,
``/compare``, ``/permalink``, ``/restore``; see the README's "App" section.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from morphlib.app.engine import NO_CURVES, Engine, ModelRegistry, MorphOutput, device_problem  # noqa: E402
from morphlib.app.examples import EXAMPLES_DIR, Example, example_by_name, find_example, load_examples  # noqa: E402
from morphlib.app.images import MAX_BYTES  # noqa: E402
from morphlib.app.settings import UI_SETTINGS, Settings, wants_run  # noqa: E402
from morphlib.app.ui import failed, friendly, image_input, setting_widget, takes_settings  # noqa: E402

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
COMPUTE_LIMIT = int(os.environ.get("MORPHLIB_APP_CONCURRENCY", "2"))
ON_SPACE = bool(os.environ.get("SPACE_ID"))
INTRO = """# morphlib: how would this classifier change the image?
Pick an image and a model, choose a target class, and **Morph**: the classifier's own
gradient, taken with respect to the *phases* of a complex steerable pyramid, is amplified
into a short video from the input toward the target (the method of "Through a Steerable
Lens", Mahdisoltani et al., 2025). Compare it with pixel and Fourier edits in
**Compare families**.
"""
NUMBERS_HEADERS = ["frame", "α", "L2", "p(source)", "p(target)", "top-1"]

ENGINE: Engine | None = None
DEMO: gr.Blocks | None = None


# ---------------------------------------------------------------------- helpers
def engine() -> Engine:
    global ENGINE
    if ENGINE is None:
        ENGINE = Engine()
    return ENGINE


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
    """The example the page opens on: the first of :data:`START_EXAMPLES` whose model loads now."""
    for name in START_EXAMPLES:
        try:
            example = example_by_name(name)
        except ValueError:
            continue
        if loadable(example_model(example)):
            return example
    return None


def model_choices() -> list[tuple[str, str]]:
    return [(c.label, c.id) for c in engine().registry.choices()]


def labels_of(model_id: str) -> list[str]:
    """The model's class names from the zoo (nothing is loaded); empty when unknown."""
    from morphlib.zoo import label_names

    try:
        entry = engine().registry.choice(model_id).entry
        return label_names(entry.dataset) if entry is not None else []
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
    p = engine().predict(image, model)
    lines = [f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}** (runner-up)."]
    lines += [f"- {note}" for note in p.notes]
    target = gr.update(choices=p.labels, value=p.suggestion)
    return top5_value(p.top), target, "\n".join(lines)


#: What a morph shows, cleared: video, GIF, scrubber, frame, plot, change map, summary, the
#: session's result (state) and the per-frame numbers.
#: (The plot is cleared to no data rather than to None, which the page's plot fails to redraw.)
CLEARED_MORPH = (
    None,
    None,
    gr.update(minimum=0, maximum=1, value=0, interactive=False),
    None,
    NO_CURVES,
    *[None] * 4,
)


def pick_example(image: str | bytes | None, model: str) -> tuple:
    """An example picked in the UI: its prediction, and the previous morph's outputs cleared (they
    belong to another image). When the prediction fails (e.g. a photo example whose Hub model cannot
    be downloaded now), the top-5 is cleared too and the status says why: no output keeps showing
    the previous answer."""
    try:
        top, target, message = predict(image, model)
    except gr.Error as err:
        gr.Warning(str(err.message))
        top, target, message = {}, gr.update(choices=labels_of(model), value=None), f"⚠ {err.message}"
    return (top, target, message, *CLEARED_MORPH)


def predict_failed(model: str, request: gr.Request) -> tuple:
    """After a failed /predict (a bad upload, a model that cannot load): no top-5, the chosen
    model's labels (from the zoo) as the targets, the reason, and no morph of another input."""
    target = gr.update(choices=labels_of(model), value=None)
    return ({}, target, failed("Classifying the image", request), *CLEARED_MORPH)


def morph_failed(request: gr.Request) -> tuple:
    return (*CLEARED_MORPH, failed("The morph", request))


def compare_failed(request: gr.Request) -> tuple:
    return None, None, failed("The comparison", request)


def describe_model(model: str) -> str:
    """The picked model's description, and what loading it takes (never fails: it only reads the zoo)."""
    try:
        return engine().registry.describe(model)
    except ValueError as err:
        return f"⚠ {err}"


def on_gpu(fn: Callable, decorator: Callable = gpu, forked: bool = ZERO_GPU) -> Callable:
    """``fn`` run through ``decorator`` (``spaces.GPU``). On ZeroGPU that call runs in a forked
    process, so what it caches is gone when it returns: the gradients it computed come back
    with its result and are kept in this process's cache (the models were loaded here at
    start, see :func:`main`), so that the next call neither reloads nor recomputes them."""
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


def numbers_table(out: MorphOutput | None) -> list[list[Any]] | None:
    """The morph's per-frame numbers as table rows (:data:`NUMBERS_HEADERS`)."""
    if out is None:
        return None
    r = out.result
    return [
        [
            k,
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
    slider = gr.update(minimum=0, maximum=n - 1, value=n - 1, step=1, interactive=True)
    return (
        str(out.video),
        None,
        slider,
        out.frames[-1],
        out.curves,
        str(out.change),
        out.summary,
        out,
        out.message,
        link_for(s, image, request),
        round(float(out.result.l2[-1]), 4),
    )


@friendly
def show_frame(index: float, shown: MorphOutput | None) -> Any:
    """One frame of the last morph (this session's), with its probabilities drawn."""
    if shown is None:
        raise gr.Error("morph an image first; the scrubber shows its frames")
    n = len(shown.frames)
    k = int(round(float(index or 0)))
    if not 0 <= k < n:
        raise gr.Error(f"frame {k} does not exist; the morph has frames 0 to {n - 1}")
    return shown.frames[k]


@friendly
def make_gif(shown: MorphOutput | None) -> str:
    """The last morph (this session's) as a looping GIF, written when first asked for."""
    if shown is None:
        raise gr.Error("morph an image first; the GIF is made from its frames")
    return str(engine().gif(shown))


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
    out = _run_compare(image, s, float(budget or 0.0), progress)
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
    notes = [f"⚠ {w}" for w in restored["warnings"]]
    info = ""
    ready = False
    try:
        info = engine().registry.describe(s["model"])
        if restored["image"] and not loadable(s["model"]):
            notes.append(
                f"⬇ {s['model']!r} is not on this machine yet: pick it again (or Morph) to download it."
            )
        elif restored["image"]:
            p = engine().predict(restored["image"], s["model"])
            top = top5_value(p.top)
            wanted = s["target"] if s["target"] else p.suggestion
            target_update = gr.update(choices=p.labels, value=wanted)
            notes.insert(0, f"**{p.top[0][0]}** ({p.top[0][1]:.1%}); suggested target: **{p.suggestion}**.")
            ready = True
    except ValueError as err:  # a model that cannot be loaded, a bad link...: say so, keep the page
        notes.append(f"⚠ {err}")
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


# ---------------------------------------------------------------------- layout
def create_demo(eng: Engine | None = None, concurrency: int = COMPUTE_LIMIT) -> gr.Blocks:
    """Build the Blocks app around ``eng`` (default: the repository's zoo); at most ``concurrency``
    morphs and comparisons are computed at once."""
    global ENGINE, DEMO
    ENGINE = eng or ENGINE or Engine()
    registry = ENGINE.registry
    examples = load_examples()
    first = start_example()
    default_model = example_model(first) if first is not None else registry.default()

    with gr.Blocks(title="morphlib: steerable-pyramid morphs", delete_cache=(900, 3600)) as demo:
        shown_state = gr.State(None, time_to_live=3600)  # this session's last MorphOutput
        run_flag = gr.State(False)
        gr.Markdown(INTRO)
        ui: dict[str, gr.components.Component] = {}
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
                ui["model"] = setting_widget(
                    "model", choices=model_choices(), value=default_model, allow_custom_value=True
                )
                model_info = gr.Markdown(
                    registry.describe(default_model), label="Model info", elem_id="model-info"
                )
                top5 = gr.Label(label="Top-5 predictions", num_top_classes=5, elem_id="top5")
                ui["target"] = setting_widget(
                    "target",
                    choices=labels_of(default_model),
                    value=None,
                    filterable=True,
                    allow_custom_value=True,
                )
                ui["family"] = setting_widget("family")
                ui["regime"] = setting_widget("regime")
                with gr.Row():
                    ui["mode"] = setting_widget("mode")
                    ui["strength"] = setting_widget("strength")
                with gr.Row():
                    ui["prob"] = setting_widget("prob")
                    ui["frames"] = setting_widget("frames")
                with gr.Accordion("Advanced (steerable pyramid, colour, phase)", open=False):
                    for name in ("orientations", "bandwidth", "luma_only", "phase_cap", "smooth_sigma"):
                        ui[name] = setting_widget(name)
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
                        scrubber = gr.Slider(
                            0, 15, value=0, step=1, label="Frame", interactive=False, elem_id="scrubber"
                        )
                        frame = gr.Image(
                            label="Frame", type="numpy", interactive=False, height=320, elem_id="frame"
                        )
                        with gr.Row():
                            plot = gr.LinePlot(
                                x="α",
                                y="probability",
                                color="class",
                                y_lim=[0, 1],
                                label="Source and target probability along the morph",
                                elem_id="plot",
                            )
                            change = gr.Image(
                                label="Where the image changed (last frame)",
                                type="filepath",
                                interactive=False,
                                elem_id="change",
                            )
                        numbers = gr.Dataframe(
                            headers=NUMBERS_HEADERS,
                            label="Numbers (per frame)",
                            interactive=False,
                            elem_id="numbers",
                        )
                        with gr.Row():
                            gif_button = gr.Button("Make a GIF", size="sm", elem_id="make-gif")
                            gif = gr.File(label="GIF download", interactive=False, elem_id="gif")
                        summary = gr.JSON(visible=False)  # the whole summary, for the API
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
                            label="Families side by side",
                            autoplay=True,
                            loop=True,
                            interactive=False,
                            elem_id="compare-video",
                        )
                        compare_table = gr.Dataframe(
                            headers=["family", "L2", "p(source)", "p(target)", "top-1", "note"],
                            label="Last frame of each family",
                            interactive=False,
                            wrap=True,
                            elem_id="compare-table",
                        )
                        compare_status = gr.Markdown("", label="Compare status", elem_id="compare-status")
                    with gr.Tab("Share & API"):
                        link = gr.Textbox(
                            label="Permalink to these settings",
                            buttons=["copy"],
                            interactive=False,
                            elem_id="permalink",
                        )
                        gr.Markdown(API_HELP)

        settings_inputs = [ui[name] for name in UI_SETTINGS]
        model, target = ui["model"], ui["target"]
        predict_outputs = [top5, target, status]
        # What a morph shows (cleared when the input changes or a request fails; see CLEARED_MORPH).
        shown_outputs = [video, gif, scrubber, frame, plot, change, summary, shown_state, numbers]
        morph_outputs = [*shown_outputs[:-1], status, link, budget]
        table = dict(
            fn=numbers_table, inputs=shown_state, outputs=numbers, queue=False, api_visibility="private"
        )
        compute = dict(concurrency_id="compute", concurrency_limit=concurrency)

        gr.on(
            [image.input, model.input],
            predict,
            inputs=[image, model],
            outputs=predict_outputs,
            api_name="predict",
            concurrency_limit=4,
        ).failure(
            predict_failed, inputs=model, outputs=[*predict_outputs, *shown_outputs], api_visibility="private"
        )
        image.input(lambda: CLEARED_MORPH, outputs=shown_outputs, api_visibility="private", queue=False)
        for group, cache in _example_groups(examples):
            with examples_box:
                gr.Examples(
                    examples=[[str(e.file), example_model(e)] for e in group],
                    inputs=[image, model],
                    outputs=[*predict_outputs, *shown_outputs],
                    fn=pick_example,
                    run_on_click=True,
                    cache_examples=cache,
                    cache_mode="lazy" if cache else None,
                    example_labels=[e.caption or e.name for e in group],
                    label=_examples_label(group),
                    api_visibility="undocumented",
                    examples_per_page=12,
                )
        morphed = [
            run.click(
                run_morph,
                inputs=[image, *settings_inputs],
                outputs=morph_outputs,
                api_name="morph",
                **compute,
            ),
            gr.on(
                [ui["strength"].submit, ui["frames"].release],
                morph_if,
                inputs=[shown_state, image, *settings_inputs],
                outputs=morph_outputs,
                api_visibility="private",
                trigger_mode="always_last",
                **compute,
            ),
        ]
        scrubber.input(
            show_frame,
            inputs=[scrubber, shown_state],
            outputs=frame,
            api_name="frame",
            trigger_mode="always_last",
            show_progress="hidden",
        )
        gif_button.click(make_gif, inputs=shown_state, outputs=gif, api_name="gif")
        compare_button.click(
            run_compare,
            inputs=[image, model, target, budget, *settings_inputs[2:]],
            outputs=[compare_video, compare_table, compare_status],
            api_name="compare",
            **compute,
        ).failure(
            compare_failed, outputs=[compare_video, compare_table, compare_status], api_visibility="private"
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
        loaded = demo.load(
            on_load,
            inputs=None,
            outputs=[image, model, *settings_inputs[1:], top5, status, model_info, run_flag],
            api_visibility="private",
        )
        morphed.append(
            loaded.then(
                morph_if,
                inputs=[run_flag, image, *settings_inputs],
                outputs=morph_outputs,
                api_visibility="private",
                **compute,
            )
        )
        for event in morphed:  # the numbers table follows the result; a failure clears what it showed
            event.success(**table)
            event.failure(morph_failed, outputs=[*shown_outputs, status], api_visibility="private")
    DEMO = demo
    return demo


def _example_groups(examples: tuple[Example, ...]) -> list[tuple[list[Example], bool]]:
    """The examples whose model loads now, and the others; on a Space, the first group's outputs are
    cached lazily (on first use), the others never (their model may not be there)."""
    ready = [e for e in examples if loadable(example_model(e))]
    later = [e for e in examples if e not in ready]
    return [(group, ON_SPACE and group is ready) for group in (ready, later) if group]


def _examples_label(group: list[Example]) -> str:
    """``Examples: photos (ImageNet models)`` and/or ``digits, gratings, shapes (bundled models)``."""
    entries = engine().registry.entries
    photos = [e.model in entries and entries[e.model].dataset == "imagenet-1k" for e in group]
    kinds = ["digits, gratings, shapes (bundled models)"] * (not all(photos))
    return "Examples: " + "; ".join(kinds + ["photos (ImageNet models)"] * any(photos))


API_HELP = """
**HTTP / Python API.** Every action is a named endpoint: `/models`, `/predict`, `/morph`,
`/frame`, `/gif`, `/compare`, `/permalink`, `/restore` (parameters: *Use via API* in the footer).
With `gradio_client`:

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")  # this app's address
image = handle_file("digit.png")
top5, target, message = client.predict(image, "digits-cnn-robust", api_name="/predict")
video, gif, scrubber, frame, plot, change, summary, numbers, message, link, budget = client.predict(
    image=image, model="digits-cnn-robust", target="9", family="csp-phase",
    mode="budget", strength=4.0, frames=8, api_name="/morph",
)
gif = client.predict(api_name="/gif")  # the GIF of this session's last morph
```
"""


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
    eng = Engine(ModelRegistry(args.zoo, device=args.device))
    if ZERO_GPU:  # load (and move to the GPU) in the main process, where it lasts
        log.info("ZeroGPU: preloaded %s", ", ".join(eng.registry.preload()))
    demo = create_demo(eng, concurrency=args.concurrency)
    launch(demo, share=args.share, host=args.host, port=args.port, concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
