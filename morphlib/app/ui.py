"""The Gradio side of the app's plumbing, kept out of ``app.py`` (layout and wiring): the image
input that hands the raw upload to :mod:`morphlib.imaging`, errors turned into messages
(and remembered for the outputs they clear), and the settings' widgets and handler
signatures built from :data:`morphlib.app.settings.SPECS`."""

from __future__ import annotations

import base64
import functools
import html
import inspect
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from morphlib.imaging import MAX_BYTES

from .settings import SPECS, UI_SETTINGS, Settings

log = logging.getLogger("morphlib.app")

__all__ = [
    "NO_UPLOAD",
    "failed",
    "friendly",
    "html_text",
    "image_input",
    "md_text",
    "raw_file",
    "setting_widget",
    "takes_settings",
    "uploaded_file",
]

#: The one answer to a file path that is not an upload of this server, whether or not a file is
#: there: nothing tells a client what exists outside the upload folder.
NO_UPLOAD = "no uploaded image was received (uploads expire after a while); upload the image again"


def uploaded_file(path: Any) -> str:
    """``path`` resolved, if it names a regular file inside Gradio's upload folder no larger than
    :data:`~morphlib.imaging.MAX_BYTES`; else ``gr.Error`` (:data:`NO_UPLOAD` for every path
    outside the folder, existing or not).

    Gradio checks a file payload's path only when the payload carries ``meta``; without it the
    path arrives as sent, so this is the check every upload goes through. Symbolic links and
    ``..`` are resolved first. Only the file's size is read here (no hashing, no decoding).
    """
    try:
        folder = Path(get_upload_folder()).resolve()
        resolved = Path(os.path.abspath(str(path))).resolve(strict=True)
        size = resolved.stat().st_size if resolved.is_relative_to(folder) and resolved.is_file() else None
    except (OSError, ValueError, RuntimeError):  # missing, unreadable, a NUL in the name, a link loop
        size = None
    if size is None:
        raise gr.Error(NO_UPLOAD)
    if size > MAX_BYTES:
        raise gr.Error(f"the image is larger than {MAX_BYTES // 2**20} MB; upload a smaller one")
    return str(resolved)


def raw_file(payload: Any) -> str | bytes | None:
    """What the image input hands to the handlers: the uploaded file untouched (its path, checked by
    :func:`uploaded_file`, or the bytes of a data URL), so that ``morphlib.imaging`` decodes it,
    with its size and decompression-bomb limits and its messages, instead of Gradio's own PIL
    decoding."""
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
        raise gr.Error(NO_UPLOAD)
    return uploaded_file(payload.path)


def image_input(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` whose preprocessing is :func:`raw_file`.

    Set on the instance (a subclass would make Gradio write an ``app.pyi`` stub next to this
    file); the app never sends ``gr.update`` to this component, which would rebuild it.
    """
    component = gr.Image(**kwargs)
    component.preprocess = raw_file  # type: ignore[method-assign]
    return component


# ---------------------------------------------------------------------- escaping
#: What Markdown (and the HTML inside it) would turn into markup, links or LaTeX.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\](){}<>&!#|~$@])")
#: The starts of GFM's bare autolinks (``https://...``, ``www....``).
_AUTOLINK = re.compile(r"(?i)(:)(?=//)|\b(www)(\.)")


def md_text(text: object) -> str:
    r"""``text`` as literal Markdown: every character that could start markup, a link (also a bare
    ``https://`` or ``www.`` autolink), raw HTML or LaTeX is backslash-escaped, so that what a
    request sent (a model id, a link's parameter, an error quoting them) shows as typed.

    >>> md_text('<img src=x> [a](https://e.x)')
    '\\<img src=x\\> \\[a\\]\\(https\\://e.x\\)'
    """
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return _AUTOLINK.sub(lambda m: "\\:" if m.group(1) else m.group(2) + "\\.", escaped)


def html_text(text: object) -> str:
    """``text`` as literal HTML (``&``, ``<``, ``>`` escaped; quotes kept): Gradio shows the messages
    of ``gr.Error`` and ``gr.Warning`` as (sanitised) HTML, which keeps links and images."""
    return html.escape(str(text), quote=False)


# ---------------------------------------------------------------------- errors
#: Seconds an error toast stays up (Gradio's default, 10, for a message the status line repeats).
TOAST_SECONDS = 6
#: The last error of each session (bounded), for the status line of the outputs it cleared.
_FAILURES: OrderedDict[str, str] = OrderedDict()


def friendly(fn: Callable) -> Callable:
    """Errors a user can cause become a message in the UI (``gr.Error``); anything else is logged
    and reported in one line, never as a stack trace, and the app keeps serving. The message is
    also kept for the session, for :func:`failed` to show next to the outputs it clears.

    Messages often quote what the request sent, so the toast gets them HTML-escaped
    (:func:`html_text`), and the toast closes by itself after :data:`TOAST_SECONDS`: the status
    line keeps the message.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as err:
            message, title = str(err.message), err.title
        except ValueError as err:  # ImageError, ModelUnavailableError, bad settings, unknown class...
            message, title = str(err), "Cannot do that"
        except Exception as err:
            log.exception("unexpected error in %s", fn.__name__)
            message = (
                f"something went wrong on the server ({type(err).__name__}); the app is still running — "
                "try again, or another image or setting"
            )
            title = "Server error"
        _remember(args, kwargs, message)
        raise gr.Error(html_text(message), title=title, duration=TOAST_SECONDS) from None

    return wrapper


def _remember(args: tuple, kwargs: dict, message: str) -> None:
    request = next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)
    session = getattr(request, "session_hash", None)
    if session:
        _FAILURES[session] = message
        while len(_FAILURES) > 256:
            _FAILURES.popitem(last=False)


def failed(what: str, request: gr.Request | None) -> str:
    """The status line of a request that failed: what failed and why (the session's last error)."""
    reason = _FAILURES.pop(getattr(request, "session_hash", None) or "", None)
    why = md_text(reason) if reason else "see the message shown"
    return f"⚠ {what} failed: {why}. Its earlier results were cleared."


# ---------------------------------------------------------------------- API help
#: The Python name of an endpoint's output, by its component's ``elem_id`` where they differ.
_API_NAMES = {"status": "message", "permalink": "link", "compare_budget": "budget"}
#: The ``/morph`` call of the example: parameter -> its value, as Python source.
_MORPH_CALL = {
    "image": "image",
    "model": '"digits-cnn-robust"',
    "target": '"9"',
    "family": '"csp-phase"',
    "mode": '"budget"',
    "strength": "4.0",
    "frames": "8",
}


def returned_names(demo: gr.Blocks, api_name: str) -> list[str]:
    """Python names for what endpoint ``api_name`` returns, in order: its output components (less
    the session's state, which the API does not return), named by their ``elem_id``."""
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    shown = [c for c in fn.outputs if not isinstance(c, gr.State)]
    names = [(c.elem_id or f"value_{i}").replace("-", "_") for i, c in enumerate(shown)]
    return [_API_NAMES.get(name, name) for name in names]


def api_example(demo: gr.Blocks, url: str = "http://127.0.0.1:7860/") -> str:
    """The page's ``gradio_client`` example, written from the endpoints ``demo`` really has: what
    ``/predict`` and ``/morph`` return, and ``/morph``'s parameter names (a name it lacks
    raises ``KeyError``, so the example cannot drift from the app)."""
    endpoints = demo.get_api_info()["named_endpoints"]
    params = {p["parameter_name"] for p in endpoints["/morph"]["parameters"]}
    unknown = set(_MORPH_CALL) - params
    if unknown:
        raise KeyError(f"/morph has no parameter {', '.join(sorted(unknown))}")
    arguments = [f"    {name}={value}," for name, value in _MORPH_CALL.items()]
    return "\n".join(
        [
            "```python",
            "from gradio_client import Client, handle_file",
            "",
            f'client = Client("{url}")  # this app\'s address',
            'image = handle_file("digit.png")  # any image file',
            f'{", ".join(returned_names(demo, "predict"))} = client.predict(image, "digits-cnn-robust", '
            'api_name="/predict")',
            f"{', '.join(returned_names(demo, 'morph'))} = client.predict(",
            *arguments,
            '    api_name="/morph",',
            ")",
            'gif = client.predict(api_name="/gif")  # the GIF of this session\'s last morph',
            "```",
        ]
    )


# ---------------------------------------------------------------------- settings
def setting_widget(name: str, **overrides: Any) -> gr.components.Component:
    """The widget of setting ``name``, as its :class:`~morphlib.app.settings.Spec` describes it."""
    spec = SPECS[name]
    w = spec.widget
    args: dict[str, Any] = dict(label=w.label, value=spec.default, elem_id=w.elem_id)
    if w.info:
        args["info"] = w.info
    if w.kind == "radio" or (w.kind == "dropdown" and spec.choices):
        args["choices"] = list(spec.choices)
    elif w.kind == "slider":
        args.update(minimum=spec.low, maximum=spec.high, step=w.step or 1)
    elif w.kind == "number":
        args.update(minimum=spec.low, maximum=spec.high)
    args.update(overrides)
    kinds = {"radio": gr.Radio, "slider": gr.Slider, "number": gr.Number, "checkbox": gr.Checkbox}
    return kinds.get(w.kind, gr.Dropdown)(**args)


def takes_settings(
    *, leading: tuple[str, ...] = ("image",), extra: tuple[str, ...] = (), progress: bool = True
):
    """Expose ``fn(*leading, settings, *extra, request=, progress=)`` to Gradio with one named
    parameter per setting (``leading``, then model and target, then ``extra``, then the other
    settings: the API endpoints' parameters), validated into one :class:`Settings`."""
    names = [*leading, *UI_SETTINGS[:2], *extra, *UI_SETTINGS[2:]]
    plain = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, plain) for n in names]
    params.append(inspect.Parameter("request", plain, annotation=gr.Request))
    if progress:
        params.append(inspect.Parameter("progress", plain, default=gr.Progress()))
    signature = inspect.Signature(params)

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            s = Settings.from_ui({n: a[n] for n in UI_SETTINGS})
            special = {k: a[k] for k in ("request", "progress") if k in a}
            return fn(*(a[n] for n in leading), s, *(a[n] for n in extra), **special)

        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {"request": gr.Request}
        return wrapper

    return decorate
