"""Agreement with the reference implementations (plenoptic, pyrtools)."""

import numpy as np
import pytest
import torch

from morphlib.transforms import SteerablePyramid
from tests.conftest import rel_err

po = pytest.importorskip("plenoptic")
pt = pytest.importorskip("pyrtools")


def plenoptic_coeffs(x, orientations, scales, downsample, tight):
    ref = po.process.SteerablePyramidFreq(
        x.shape[-2:],
        height=scales,
        order=orientations - 1,
        is_complex=True,
        downsample=downsample,
        tight_frame=tight,
    ).to(x.dtype)
    out = ref(x)
    return out["residual_highpass"], [out[i] for i in range(scales)], out["residual_lowpass"]


@pytest.mark.parametrize("shape", [(64, 64), (96, 64), (56, 100)])
@pytest.mark.parametrize("orientations", [2, 4, 6])
@pytest.mark.parametrize("downsample,tight", [(True, False), (False, False), (True, True), (False, True)])
def test_same_coefficients_as_plenoptic(shape, orientations, downsample, tight):
    x = torch.rand(2, 3, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = SteerablePyramid(orientations=orientations, downsample=downsample, tight=tight).analyze(x)
    hp, bands, lp = plenoptic_coeffs(x, orientations, len(ours.bands), downsample, tight)
    assert rel_err(ours.highpass, hp) <= 1e-4
    assert rel_err(ours.lowpass, lp) <= 1e-4
    for mine, theirs in zip(ours.bands, bands, strict=True):
        assert mine.shape == theirs.shape
        assert rel_err(mine, theirs) <= 1e-4


def test_same_coefficients_as_pyrtools():
    img = np.random.default_rng(0).random((64, 80))
    ref = pt.pyramids.SteerablePyramidFreq(img, height=3, order=3, is_complex=True)
    ours = SteerablePyramid(scales=3).analyze(torch.from_numpy(img)[None, None])
    assert rel_err(ours.highpass[0, 0], torch.from_numpy(ref.pyr_coeffs["residual_highpass"])) <= 1e-4
    assert rel_err(ours.lowpass[0, 0], torch.from_numpy(ref.pyr_coeffs["residual_lowpass"])) <= 1e-4
    for s in range(3):
        for k in range(4):
            theirs = torch.from_numpy(ref.pyr_coeffs[(s, k)])
            assert rel_err(ours.bands[s][0, 0, k], theirs) <= 1e-4


def test_reconstruction_no_worse_than_plenoptic():
    x = torch.rand(1, 3, 128, 96)
    ours = SteerablePyramid()
    ref = po.process.SteerablePyramidFreq((128, 96), order=3, is_complex=True)
    ours_err = rel_err(ours.synthesize(ours.analyze(x)), x)
    ref_err = rel_err(ref.recon_pyr(ref(x)), x)
    assert ours_err <= ref_err * 1.5
