"""Files from the Hugging Face Hub: the local cache first, the network only if allowed.

The cache location, the endpoint and offline mode are read from the environment at each
call (``HF_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``), not at import
time as ``huggingface_hub.constants`` does, so changing them later takes effect.
"""

from __future__ import annotations

import base64
import os
import socket
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

from huggingface_hub import hf_hub_download, try_to_load_from_cache

#: Seconds to wait for the Hub before giving up on a download.
TIMEOUT_S = 10.0
#: Seconds to wait for the Hub (or the proxy to it) when checking that it can be reached.
PROBE_TIMEOUT_S = 3.0


class ModelUnavailableError(ValueError):
    """A zoo model's weights are neither bundled nor cached, and cannot be downloaded now."""


def cache_dir() -> Path:
    """The Hub cache folder that ``huggingface_hub`` would use, read from the environment now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT``, read now, or ``https://huggingface.co``."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids network access."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def proxy_for(url: str) -> str | None:
    """The proxy that ``huggingface_hub`` (httpx) would use for ``url``, from the same settings.

    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (any case; the system's settings on
    macOS and Windows) and ``NO_PROXY``, read with :func:`urllib.request.getproxies`, as httpx does.
    """
    parts = urlparse(url)
    proxies = urllib.request.getproxies()
    if "no" in proxies and urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return proxy if not proxy or "://" in proxy else f"http://{proxy}"


def probe(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub endpoint (``HF_ENDPOINT``) cannot be reached now, or ``None`` if it can.

    ``hf_hub_download`` retries with back-off for tens of seconds when there is no
    network; this check lets an offline machine fail at once instead.  It takes the
    route the download would: straight to the Hub, or, when a proxy applies (see
    :func:`proxy_for`), to the proxy, asking an HTTP proxy to ``CONNECT`` to an
    ``https`` Hub, so that a proxy that is the only way out is enough.
    """
    hub = endpoint()
    url = urlparse(hub)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = proxy_for(hub)
    if proxy is None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError:
            return f"the Hub ({hub}) cannot be reached (no network?)"
    via = urlparse(proxy)
    shown = f"{via.scheme}://{via.hostname}:{via.port}" if via.port else f"{via.scheme}://{via.hostname}"
    try:
        with socket.create_connection(
            (via.hostname or "", via.port or (443 if via.scheme == "https" else 80)), timeout=timeout
        ) as conn:
            if url.scheme != "https" or via.scheme != "http":
                return None  # a plain-HTTP Hub or another kind of proxy: that it answers is all we check
            conn.settimeout(timeout)
            conn.sendall(_connect_request(host, port, via))
            status = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1").strip()
    except OSError as err:
        return f"the proxy {shown} cannot be reached ({err})"
    if status.split(" ")[1:2] == ["200"]:
        return None
    return f"the Hub ({hub}) cannot be reached through the proxy {shown} (it answered {status!r})"


def _connect_request(host: str, port: int, proxy) -> bytes:
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if proxy.username:
        user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(user.encode()).decode()}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def cached_file(repo_id: str, filename: str) -> Path | None:
    """Path of ``filename`` of ``repo_id`` in the local cache (``main`` revision), or ``None``."""
    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir())
    return Path(found) if isinstance(found, str) else None


def fetch(repo_id: str, filename: str, model_id: str) -> Path:
    """Local path of a Hub file: from the cache, else downloaded when the network is allowed.

    Parameters
    ----------
    repo_id, filename : str
        The file, e.g. ``("timm/resnet50.a1_in1k", "model.safetensors")``.
    model_id : str
        The zoo id, for the error message.

    Raises
    ------
    ModelUnavailableError
        The file is not cached and offline mode is on, or the download failed.
    """
    found = cached_file(repo_id, filename)
    if found is not None:
        return found
    how = (
        f"fetch it once with network access (python -c \"import morphlib.zoo as z; z.load('{model_id}')\", "
        f"or hf download {repo_id} {filename}) into the Hub cache {cache_dir()}"
    )
    if offline():
        raise ModelUnavailableError(
            f"model {model_id!r} needs {filename} from the Hub repository {repo_id}, which is not in the "
            f"local cache, and HF_HUB_OFFLINE is set; {how}"
        )
    problem = probe()
    if problem is not None:
        raise ModelUnavailableError(
            f"model {model_id!r} needs {filename} from the Hub repository {repo_id}, which is not in the "
            f"local cache, and {problem}; {how}"
        )
    try:
        path = hf_hub_download(
            repo_id, filename, cache_dir=cache_dir(), endpoint=endpoint(), etag_timeout=TIMEOUT_S
        )
    except Exception as err:  # network down, repo gone, gated...: all mean "not available now"
        raise ModelUnavailableError(
            f"model {model_id!r}: could not download {filename} from the Hub repository {repo_id} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {how}"
        ) from err
    return Path(path)
