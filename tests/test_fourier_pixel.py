import pytest
import torch

from morphlib.transforms import Fourier, Pixel
from tests.conftest import rel_err


@pytest.mark.parametrize("shape", [(16, 16), (17, 24), (31, 9)])
def test_fourier_round_trip_and_energy(shape, device):
    x = torch.rand(2, 3, *shape, dtype=torch.float64, device=device)
    f = Fourier()
    c = f.analyze(x)
    assert c.spectrum.shape == (2, 3, shape[0], shape[1] // 2 + 1)
    assert rel_err(f.synthesize(c), x) <= 1e-12
    rebuilt = type(c).from_polar(c.amplitude, c.phase, c.image_size)
    assert rel_err(f.synthesize(rebuilt), x) <= 1e-12


def test_fourier_fixed_phase_mask_marks_dc_and_nyquist():
    c = Fourier().analyze(torch.rand(1, 1, 8, 10))
    mask = c.fixed_phase_mask()
    assert mask.shape == (8, 6)
    assert mask[:, 0].all() and mask[:, 5].all() and mask[4].all()
    assert mask.sum() == 8 + 8 + 6 - 2
    odd = Fourier().analyze(torch.rand(1, 1, 7, 9)).fixed_phase_mask()
    assert odd.sum() == 7  # only column 0 (DC column) for odd sizes


def test_pixel_is_identity():
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(Pixel().synthesize(Pixel().analyze(x)), x)


def test_fourier_rejects_bad_input():
    with pytest.raises(ValueError, match="4-d"):
        Fourier().analyze(torch.rand(3, 8, 8))
