import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def rel_err(a, b):
    """Relative L2 error of ``a`` against the reference ``b``."""
    return ((a - b).abs().norm() / b.abs().norm()).item()


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache in ``tmp_path``, offline; set after huggingface_hub was imported."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
