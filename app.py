"""morphlib's Gradio app: how would this classifier change the image to make it another class?

Layout and wiring only: what each event does is in :mod:`morphlib.app.handlers`, the settings,
their widgets and their permalinks are listed once in
:mod:`morphlib.app.settings`, and the work is done by :class:`morphlib.app.engine.Engine`.

    python app.py                 # http://127.0.0.1:7860
    python app.py --share         # also ask Gradio for a public link (needs internet)
    python app.py --port 8000 --host 0.0.0.0 --zoo my-zoo.yaml

Named endpoints (``gradio_client``): ``/models``, ``/predict``, ``/morph``, ``/frame``, ``/gif``,
``/compare``, ``/atlas``, ``/permalink``, ``/restore``; see the README's "App" section (and the page's own
*Share & API* tab, whose example is written from these endpoints).

Environment: ``MORPHLIB_APP_CONCURRENCY`` (morphs at once, 2), ``MORPHLIB_APP_SESSIONS`` (sessions
whose state is kept, 500), ``MORPHLIB_APP_RESULTS`` (morph results kept for the scrubber and the
GIF, 64, at most 128 MB, an hour each), ``MORPHLIB_APP_URL`` (the public address permalinks start
with; on a Space, its own host), ``MORPHLIB_APP_TRUST_FORWARDED=1`` (behind a proxy that sets
``X-Forwarded-Host``/``-Proto`` itself; otherwise those headers are ignored).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from morphlib.app import atlas_handlers as ah  # noqa: E402
from morphlib.app import handlers as h  # noqa: E402
from morphlib.app.engine import Engine, ModelRegistry, device_problem  # noqa: E402
from morphlib.app.examples import EXAMPLES_DIR, load_examples  # noqa: E402
from morphlib.app.settings import MAX_STRENGTH, UI_SETTINGS  # noqa: E402
from morphlib.app.ui import api_example, image_input, setting_widget  # noqa: E402
from morphlib.imaging import MAX_BYTES  # noqa: E402

log = logging.getLogger("morphlib.app")

COMPUTE_LIMIT = int(os.environ.get("MORPHLIB_APP_CONCURRENCY", "2"))
#: Sessions whose state Gradio keeps (its default, 10,000, lets a crowd of new sessions grow the
#: server without bound: each holds a copy of the page's settings); the oldest go first.
SESSIONS = int(os.environ.get("MORPHLIB_APP_SESSIONS", "500"))
INTRO = """# morphlib: how would this classifier change the image?
Pick an image and a model, choose a target class, and **Morph**: the classifier's own
gradient, taken with respect to the phases and amplitudes of a complex steerable pyramid
(*csp-joint*), is followed step by step, re-analysing each frame (*step-local*), until the target
leads the runner-up by a log-odds margin of 3 or the change reaches its cap, and shown as a
short video; colour images change in brightness only. On held-out MNIST pairs with the default
model, three classifiers that never saw its gradients read the target on 82 % of the morphs.
The paper's method ("Through a Steerable Lens", Mahdisoltani et al., 2025: *csp-phase*, *frozen*,
one gradient of the phases, extrapolated) is one click away; on digits it fades the stroke into
a ringed ghost rather than drawing a new one (2 %). Robust models' morphs redraw the object;
standard models' look like noise. **Compare families** and **Atlas** show more;
`docs/method.md` says what was measured.
"""


#: The change map's colour scale (matplotlib's inferno, scaled to the frame's largest change).
CHANGE_SCALE = """<div class="scale-bar"></div>
<div class="scale-ends"><span>unchanged (input in grey)</span><span>the frame's largest change</span></div>"""
#: Small inputs (28 or 32 px digits) and frames fill their boxes, with crisp pixels.
CSS = """
#input-image img, #frame img, #change img { width: 100%; height: 100%; object-fit: contain;
  image-rendering: pixelated; }
#change-scale .scale-bar { height: 10px; border-radius: 3px; background: linear-gradient(to right,
  #000004, #320a5e, #781c6d, #bc3754, #ed6925, #fbb61a, #fcffa4); }
#change-scale .scale-ends { display: flex; justify-content: space-between; font-size: 12px; }
"""


# ---------------------------------------------------------------------- layout
def create_demo(eng: Engine | None = None, concurrency: int = COMPUTE_LIMIT) -> gr.Blocks:
    """Build the Blocks app around ``eng`` (default: the repository's zoo); at most ``concurrency``
    morphs and comparisons are computed at once."""
    h.ENGINE = eng or h.ENGINE or Engine()
    registry = h.ENGINE.registry
    examples = load_examples()
    first = h.start_example()
    default_model = h.example_model(first) if first is not None else registry.default()

    with gr.Blocks(title="morphlib: steerable-pyramid morphs", delete_cache=(900, 3600)) as demo:
        shown_state = gr.State(None, time_to_live=3600)  # the key of this session's last morph (h.SHOWN)
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
                # what a first morph needs (model, target, the button and its status) comes first, so
                # that the button is in view next to the result: examples and settings follow
                ui["model"] = setting_widget(
                    "model", choices=h.model_choices(), value=default_model, allow_custom_value=True
                )
                ui["target"] = setting_widget(
                    "target",
                    choices=h.labels_of(default_model),
                    value=None,
                    filterable=True,
                    allow_custom_value=True,
                )
                run = gr.Button("Morph", variant="primary", elem_id="run")
                status = gr.Markdown("", label="Status", elem_id="status")
                examples_box = gr.Column()  # filled below, once every component the examples touch exists
                top5 = gr.Label(label="Top-5 predictions", num_top_classes=5, elem_id="top5")
                model_info = gr.Markdown(
                    registry.describe(default_model), label="Model info", elem_id="model-info"
                )
                ui["family"] = setting_widget("family")
                ui["regime"] = setting_widget("regime")
                with gr.Row():
                    ui["mode"] = setting_widget("mode")
                    ui["strength"] = setting_widget("strength")
                with gr.Row():
                    ui["goal"] = setting_widget("goal")
                    ui["frames"] = setting_widget("frames")
                with gr.Accordion("Advanced (steerable pyramid, colour, phase)", open=False):
                    for name in ("orientations", "bandwidth", "luma_only", "phase_cap", "smooth_sigma"):
                        ui[name] = setting_widget(name)
            with gr.Column(scale=3, min_width=400):
                with gr.Tabs() as tabs:
                    with gr.Tab("Morph", id="morph"):
                        video = gr.Video(
                            label="Morph (loops forward and back)",
                            height=420,
                            autoplay=True,
                            loop=True,
                            interactive=False,
                            elem_id="video",
                        )
                        scrubber = gr.Slider(
                            1, 16, value=1, step=1, label="Frame", interactive=False, elem_id="scrubber"
                        )
                        frame = gr.Image(
                            label="Frame", type="filepath", interactive=False, height=320, elem_id="frame"
                        )
                        with gr.Row():
                            plot = gr.LinePlot(
                                x="α",
                                y="probability",
                                color="class",
                                color_map={"source": "#2563eb", "target": "#ea580c"},
                                y_lim=[0, 1],
                                label="Source and target probability along the morph",
                                elem_id="plot",
                            )
                            with gr.Column():
                                change = gr.Image(
                                    label="Where the image changed (last frame)",
                                    type="filepath",
                                    interactive=False,
                                    elem_id="change",
                                )
                                gr.HTML(CHANGE_SCALE, elem_id="change-scale")
                        numbers = gr.Dataframe(
                            headers=h.NUMBERS_HEADERS,
                            label="Numbers (per frame)",
                            interactive=False,
                            elem_id="numbers",
                        )
                        with gr.Row():
                            gif_button = gr.Button("Make a GIF", size="sm", elem_id="make-gif")
                            gif = gr.File(label="GIF download", interactive=False, elem_id="gif")
                        summary = gr.JSON(visible=False, elem_id="summary")  # the whole summary, for the API
                    with gr.Tab("Compare families"):
                        gr.Markdown(
                            "Pixel, Fourier phase, CSP phase and joint CSP edits at the **same L2 budget**."
                        )
                        with gr.Row():
                            budget = gr.Number(
                                value=0,
                                minimum=0,
                                maximum=MAX_STRENGTH,
                                label=f"L2 budget (0 = default, RMS {h.COMPARE_RMS:g})",
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
                    with gr.Tab("Atlas", id="atlas"):
                        gr.Markdown(
                            "Every other class at once, in one batch: how far (L2) the image is from "
                            "where each class becomes the top-1, along the path set on the left, and a "
                            "map of the classes over a plane of two directions (docs/atlas.md)."
                        )
                        with gr.Row():
                            plane_axes = gr.Textbox(
                                label="Plane: two classes A,B (empty: the target or nearest, and the next)",
                                max_length=200,
                                elem_id="atlas-axes",
                            )
                            atlas_button = gr.Button("Map the boundaries", elem_id="atlas-run")
                        atlas_status = gr.Markdown("", elem_id="atlas-status")
                        atlas_chart = gr.BarPlot(
                            x="class",
                            y="L2",
                            sort="y",
                            label="L2 distance where each class becomes top-1 (nearest first)",
                            elem_id="atlas-chart",
                        )
                        atlas_frames = gr.Gallery(
                            label="Last frame toward each class: click one to open its morph",
                            columns=5,
                            height="auto",
                            allow_preview=False,
                            elem_id="atlas-frames",
                        )
                        atlas_plane = gr.Image(
                            label="Top-1 class over the plane (arrows: the frozen paths toward A and B)",
                            type="filepath",
                            interactive=False,
                            elem_id="atlas-plane",
                        )
                        atlas_summary = gr.JSON(visible=False, elem_id="atlas-summary")
                    with gr.Tab("Share & API"):
                        link = gr.Textbox(
                            label="Permalink to these settings",
                            buttons=["copy"],
                            interactive=False,
                            elem_id="permalink",
                        )
                        api_help = gr.Markdown(API_HELP, elem_id="api-help")

        settings_inputs = [ui[name] for name in UI_SETTINGS]
        model, target = ui["model"], ui["target"]
        predict_outputs = [top5, target, status]
        # What a morph shows (cleared when the input changes or a request fails; see h.CLEARED_MORPH).
        shown_outputs = [video, gif, scrubber, frame, plot, change, summary, shown_state, numbers]
        morph_outputs = [*shown_outputs[:-1], status, link, budget]
        table = dict(
            fn=h.numbers_table, inputs=shown_state, outputs=numbers, queue=False, api_visibility="private"
        )
        compute = dict(concurrency_id="compute", concurrency_limit=concurrency)

        gr.on(
            [image.input, model.input],
            h.predict,
            inputs=[image, model],
            outputs=predict_outputs,
            api_name="predict",
            concurrency_limit=4,
        ).failure(
            h.predict_failed,
            inputs=model,
            outputs=[*predict_outputs, *shown_outputs],
            api_visibility="private",
        )
        image.input(lambda: h.CLEARED_MORPH, outputs=shown_outputs, api_visibility="private", queue=False)
        for group, cache in h.example_groups(examples):
            with examples_box:
                gr.Examples(
                    examples=[[str(e.file), h.example_model(e)] for e in group],
                    inputs=[image, model],
                    outputs=[*predict_outputs, *shown_outputs],
                    fn=h.pick_example,
                    run_on_click=True,
                    cache_examples=cache,
                    cache_mode="lazy" if cache else None,
                    example_labels=[e.caption or e.name for e in group],
                    label=h.examples_label(group),
                    api_visibility="undocumented",
                    examples_per_page=12,
                )
        morphed = [
            run.click(
                h.run_morph,
                inputs=[image, *settings_inputs],
                outputs=morph_outputs,
                api_name="morph",
                **compute,
            ),
            gr.on(
                [ui["strength"].submit, ui["frames"].release],
                h.morph_if,
                inputs=[shown_state, image, *settings_inputs],
                outputs=morph_outputs,
                api_visibility="private",
                trigger_mode="always_last",
                **compute,
            ),
        ]
        scrubber.input(
            h.show_frame,
            inputs=[scrubber, shown_state],
            outputs=frame,
            api_name="frame",
            trigger_mode="always_last",
            show_progress="hidden",
        )
        gif_button.click(
            h.make_gif_clicked,
            inputs=shown_state,
            outputs=gif,
            api_visibility="private",
            show_progress="hidden",
        )
        # /gif for the API, which says why it has no GIF (the page's button shows a note instead)
        gr.Button(visible=False).click(h.make_gif, inputs=shown_state, outputs=gif, api_name="gif")
        compare_button.click(
            h.run_compare,
            inputs=[image, model, target, budget, *settings_inputs[2:]],
            outputs=[compare_video, compare_table, compare_status],
            api_name="compare",
            **compute,
        ).failure(
            h.compare_failed, outputs=[compare_video, compare_table, compare_status], api_visibility="private"
        )
        atlas_ranked = gr.State(None)
        atlas_outputs = [atlas_chart, atlas_frames, atlas_plane, atlas_summary, atlas_status, atlas_ranked]
        atlas_button.click(
            ah.run_atlas,
            inputs=[image, *settings_inputs[:2], plane_axes, *settings_inputs[2:]],
            outputs=atlas_outputs,
            api_name="atlas",
            **compute,
        ).failure(ah.atlas_failed, outputs=atlas_outputs, api_visibility="private")
        atlas_frames.select(
            ah.open_in_morph, inputs=atlas_ranked, outputs=[target, tabs], api_visibility="private"
        )
        gr.on(
            [image.change] + [c.change for c in settings_inputs],
            h.permalink,
            inputs=[image, *settings_inputs],
            outputs=link,
            api_name="permalink",
            show_progress="hidden",
            trigger_mode="always_last",
            concurrency_limit=None,
        )
        model.change(
            h.describe_model,
            inputs=model,
            outputs=model_info,
            api_visibility="private",
            queue=False,
            show_progress="hidden",  # it reads the zoo only: no timer in the text
        )
        gr.api(h.restore, api_name="restore")
        gr.api(h.list_models, api_name="models")
        loaded = demo.load(
            h.on_load,
            inputs=None,
            outputs=[image, model, *settings_inputs[1:], top5, status, model_info, run_flag],
            api_visibility="private",
        )
        morphed.append(
            loaded.then(
                h.morph_if,
                inputs=[run_flag, image, *settings_inputs],
                outputs=morph_outputs,
                api_visibility="private",
                **compute,
            )
        )
        for event in morphed:  # the numbers table follows the result; a failure clears what it showed
            event.success(**table)
            event.failure(h.morph_failed, outputs=[*shown_outputs, status], api_visibility="private")
    api_help.value = API_HELP + api_example(demo)  # from the endpoints as wired above
    h.DEMO = demo
    return demo


API_HELP = """
**HTTP / Python API.** Every action is a named endpoint: `/models`, `/predict`, `/morph`,
`/frame`, `/gif`, `/compare`, `/atlas`, `/permalink`, `/restore` (parameters: *Use via API* in the footer).
With `gradio_client`:

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
        state_session_capacity=SESSIONS,
        allowed_paths=[str(EXAMPLES_DIR)],
        show_error=False,  # internal errors stay in the log; every error a user can cause is a gr.Error
        css=CSS,
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
    if h.ZERO_GPU:  # load (and move to the GPU) in the main process, where it lasts
        log.info("ZeroGPU: preloaded %s", ", ".join(eng.registry.preload()))
    demo = create_demo(eng, concurrency=args.concurrency)
    launch(demo, share=args.share, host=args.host, port=args.port, concurrency=args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
