import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def rel_err(a, b):
    """Relative L2 error of ``a`` against the reference ``b``."""
    return ((a - b).abs().norm() / b.abs().norm()).item()
