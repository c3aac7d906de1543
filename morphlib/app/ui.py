"""The Gradio side of the app's plumbing, kept out of ``app.py`` (layout and wiring): the image
input that hands the raw upload to :mod:`morphlib.imaging`, errors turned into messages
(and remembered for the outputs they clear), and the settings' widgets and handler
signatures built from :data:`morphlib.app.settings.SPECS`."""

from __future__ import annotations

import base64
import functools
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gradio as gr

from morphlib.imaging import MAX_BYTES

from .settings import SPECS, UI_SETTINGS, Settings

log = logging.getLogger("morphlib.app")

__all__ = ["failed", "friendly", "image_input", "raw_file", "setting_widget", "takes_settings"]


def raw_file(payload: Any) -> str | bytes | None:
    """What the image input hands to the handlers: the uploaded file untouched (its path, or the
    bytes of a data URL), so that ``morphlib.imaging`` decodes it, with its size and
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


# ---------------------------------------------------------------------- errors
#: The last error of each session (bounded), for the status line of the outputs it cleared.
_FAILURES: OrderedDict[str, str] = OrderedDict()


def friendly(fn: Callable) -> Callable:
    """Errors a user can cause become a message in the UI (``gr.Error``); anything else is logged
    and reported in one line, never as a stack trace, and the app keeps serving. The message is
    also kept for the session, for :func:`failed` to show next to the outputs it clears."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as err:
            _remember(args, kwargs, str(err.message))
            raise
        except ValueError as err:  # ImageError, ModelUnavailableError, bad settings, unknown class...
            _remember(args, kwargs, str(err))
            raise gr.Error(str(err), title="Cannot do that") from None
        except Exception as err:
            log.exception("unexpected error in %s", fn.__name__)
            message = (
                f"something went wrong on the server ({type(err).__name__}); the app is still running — "
                "try again, or another image or setting"
            )
            _remember(args, kwargs, message)
            raise gr.Error(message, title="Server error") from None

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
    reason = _FAILURES.pop(getattr(request, "session_hash", None) or "", "see the message shown")
    return f"⚠ {what} failed: {reason}. Its earlier results were cleared."


# ---------------------------------------------------------------------- settings
def setting_widget(name: str, **overrides: Any) -> gr.components.Component:
    """The widget of setting ``name``, as its :class:`~morphlib.app.settings.Spec` describes it."""
    spec = SPECS[name]
    w = spec.widget
    args: dict[str, Any] = dict(label=w.label, value=spec.default, elem_id=w.elem_id)
    if w.info:
        args["info"] = w.info
    if w.kind == "radio":
        args["choices"] = list(spec.choices)
    elif w.kind == "slider":
        args.update(minimum=spec.low, maximum=spec.high, step=w.step or 1)
    elif w.kind == "number":
        args["minimum"] = spec.low
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
