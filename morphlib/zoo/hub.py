"""Files from the Hugging Face Hub: the local cache first, the network only if allowed.

The cache location and offline mode are read from the environment at each call
(``HF_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``, ``HF_HUB_OFFLINE``), not at import
time as ``huggingface_hub.constants`` does, so changing them later takes effect.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import hf_hub_download, try_to_load_from_cache

#: Seconds to wait for the Hub before giving up on a download.
TIMEOUT_S = 10.0
#: Seconds to wait for a connection to the Hub when checking that it can be reached.
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


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids network access."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint (``HF_ENDPOINT``) opens within ``timeout`` s.

    ``hf_hub_download`` retries with back-off for tens of seconds when there is no
    network; this check lets an offline machine fail at once instead.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


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
    if not reachable():
        raise ModelUnavailableError(
            f"model {model_id!r} needs {filename} from the Hub repository {repo_id}, which is not in the "
            f"local cache, and the Hub cannot be reached (no network?); {how}"
        )
    try:
        path = hf_hub_download(repo_id, filename, cache_dir=cache_dir(), etag_timeout=TIMEOUT_S)
    except Exception as err:  # network down, repo gone, gated...: all mean "not available now"
        raise ModelUnavailableError(
            f"model {model_id!r}: could not download {filename} from the Hub repository {repo_id} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {how}"
        ) from err
    return Path(path)
