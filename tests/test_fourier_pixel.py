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
    assert mask[0, 0] and mask[:, 5].all() and mask[4].all()
    assert mask.sum() == 1 + 8 + 6 - 1
    odd = Fourier().analyze(torch.rand(1, 1, 7, 9)).fixed_phase_mask()
    assert odd.sum() == 1  # only DC for odd sizes


@pytest.mark.parametrize("shape", [(8, 10), (7, 9), (6, 7)])
def test_tied_phase_edits_stay_real_images(shape):
    """Any tied phase edit is the spectrum of a real image: analysing its synthesis gives it back."""
    x = torch.rand(2, 3, *shape, dtype=torch.float64)
    f = Fourier()
    c = f.analyze(x)
    delta = c.tie_phase(torch.randn(c.spectrum.shape, dtype=torch.float64))
    edited = type(c)(c.spectrum * torch.exp(1j * delta), c.image_size)
    torch.testing.assert_close(f.analyze(f.synthesize(edited)).spectrum, edited.spectrum)
    assert delta[..., 1:, 0].abs().max() > 0.1  # column 0 (vertical-only frequencies) is edited
    untied = type(c)(
        c.spectrum * torch.exp(1j * torch.randn(c.spectrum.shape, dtype=torch.float64)), c.image_size
    )
    assert not torch.allclose(f.analyze(f.synthesize(untied)).spectrum, untied.spectrum)
    assert torch.equal(c.tie_phase(delta), delta)  # a projection


def test_pixel_is_identity():
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(Pixel().synthesize(Pixel().analyze(x)), x)


def test_fourier_rejects_bad_input():
    with pytest.raises(ValueError, match="4-d"):
        Fourier().analyze(torch.rand(3, 8, 8))
