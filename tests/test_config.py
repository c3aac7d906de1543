"""One configuration, one engine: the settings values, reuse of a gradient, old names, one path for all."""

import warnings

import pytest
import torch

import morphlib
from morphlib import RECOMMENDED, RECOMMENDED_STRENGTH, MorphConfig, Strength, gradient, morph, morph_batch
from morphlib.engine import Gradient
from morphlib.stopping import Goal
from morphlib.zoo import load


@pytest.fixture(scope="module")
def digits():
    from morphlib.data import load as load_data

    images, labels, _ = load_data("digits", split="test", n=2, seed=0)
    return load("digits-cnn-robust"), images, labels


def test_config_is_a_checked_frozen_value():
    config = MorphConfig(family="csp-joint", pyramid={"bandwidth": "half-octave"}, smooth_sigma=0)
    assert config.smooth_sigma is None and config.pyramid.bandwidth == "half-octave"
    with pytest.raises(AttributeError):
        config.family = "pixel"  # type: ignore[misc]
    assert MorphConfig.from_dict(config.to_dict()) == config
    assert hash(config) == hash(MorphConfig.from_dict(config.to_dict()))
    with pytest.raises(ValueError, match="unknown edit family"):
        config.replace(family="warp")


def test_strength_has_one_unit_for_the_cap():
    auto = Strength.auto(goal=0.9, cap_rms=0.1)
    assert auto.cap_l2(3 * 32 * 32) == pytest.approx(0.1 * (3 * 32 * 32) ** 0.5)
    assert Strength.default_budget(100).value == pytest.approx(0.5)
    assert (RECOMMENDED.family, RECOMMENDED.regime, RECOMMENDED.smooth_sigma) == (
        "csp-joint",
        "step-local",
        1.0,
    )
    assert (RECOMMENDED_STRENGTH.goal, RECOMMENDED_STRENGTH.cap_rms) == (Goal("margin", 3.0), 0.28)


def test_a_gradient_serves_only_its_own_settings(digits):
    """The silent wrong answer of old: a gradient of one family reused for another is an error."""
    model, images, _ = digits
    g = gradient(model, images[0], "3", MorphConfig(family="csp-phase"))
    with pytest.raises(ValueError, match="family: 'csp-phase' != 'pixel'"):
        morph(model, images[0], "3", MorphConfig(family="pixel", loss="margin"), grad=g)
    with pytest.raises(ValueError, match="computed toward '3', not '5'"):
        morph(model, images[0], "5", grad=g)
    with pytest.raises(ValueError, match="another image"):
        morph(model, images[1], "3", grad=g)
    # another regime is fine: the first gradient of every path is the same
    walked = morph(model, images[0], "3", MorphConfig(regime="persistent"), frames=3, grad=g, progress=False)
    fresh = morph(model, images[0], "3", MorphConfig(regime="persistent"), frames=3, progress=False)
    torch.testing.assert_close(walked.frames, fresh.frames)


def test_a_single_morph_is_a_batch_of_one(digits):
    """One engine: morph() and morph_batch() walk the same paths; every strength kind, every regime."""
    model, images, labels = digits
    targets = [(int(y) + 1) % 10 for y in labels]
    for regime in ("frozen", "persistent", "step-local"):
        config = RECOMMENDED.replace(regime=regime)
        strengths = [Strength.budget(2.0), Strength.auto(goal=0.6)]
        for strength in strengths + ([Strength.amplification(0.5)] if regime == "frozen" else []):
            batch = morph_batch(model, images, targets, config, strength, frames=4)
            for image, target, together in zip(images, targets, batch, strict=True):
                alone = morph(model, image, target, config, strength, frames=4, progress=False)
                assert together.frames.shape == alone.frames.shape, (regime, strength)
                if strength.kind == "auto":
                    # a 24-step walk amplifies the batch's float rounding (a persistent walk that
                    # saturates ends 0.1 % apart in L2): the same path, not the same bits
                    assert together.auto.reached == alone.auto.reached
                    torch.testing.assert_close(together.l2, alone.l2, rtol=1e-2, atol=1e-3)
                    continue
                torch.testing.assert_close(together.frames, alone.frames, atol=1e-6, rtol=0)
                torch.testing.assert_close(together.probs, alone.probs, atol=1e-6, rtol=0)
                assert (together.auto is None) == (strength.kind != "auto")


def test_auto_strength_ends_where_the_goal_is_met(digits):
    model, images, _ = digits
    result = morph(model, images[0], "3", RECOMMENDED, Strength.auto(goal=0.8), frames=6, progress=False)
    assert result.auto.reached and float(result.target_probs[-1]) >= 0.8
    assert float(result.target_probs[-2]) < 0.8  # the frame before the stop does not meet it
    assert len(result.frames) == 6  # the frames asked for: the path to the stop, in equal L2 steps
    for frames in (3, 20, 40):
        walked = morph(
            model, images[0], "3", RECOMMENDED, Strength.auto(goal=0.8), frames=frames, progress=False
        )
        steps = walked.l2[1:] - walked.l2[:-1]
        assert len(walked.frames) == frames and walked.auto.reached and float(walked.target_probs[-1]) >= 0.8
        walk_step = Strength.auto().cap_l2(images[0].numel()) / 24  # frames picked from a walk: to a step
        assert float(steps.max() - steps.min()) < 1.5 * walk_step  # evenly spaced


def test_gradient_state_is_plain_data(digits):
    model, images, _ = digits
    g = gradient(model, images[0], "3", RECOMMENDED)
    state = g.state()
    plain = (str, int, float, bool, type(None), list, dict, torch.Tensor)

    def check(value):
        assert isinstance(value, plain), type(value)
        for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
            check(item)

    check(state)
    back = Gradient.from_state(model, state)
    assert back.config == g.config and back.targets == g.targets
    torch.testing.assert_close(back.render([0.5]), g.render([0.5]))


def test_old_names_still_work_and_say_what_to_use(digits):
    model, images, _ = digits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = morph(model, images[0], "3", family="pixel", frames=3, budget=1.0)
    said = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert any("config=MorphConfig" in s for s in said) and any("Strength.budget" in s for s in said)
    new = morph(model, images[0], "3", MorphConfig(family="pixel"), Strength.budget(1.0), frames=3)
    torch.testing.assert_close(old.frames, new.frames)
    with pytest.warns(DeprecationWarning, match="morphlib.engine"):
        from morphlib.batch import morph_batch as old_batch  # noqa: F401
    with pytest.warns(DeprecationWarning, match="Strength.auto"):
        from morphlib.strength import auto_morph

        result, found = auto_morph(model, images[0], "3", family="pixel", min_prob=0.5, frames=3)
    assert found is result.auto and found.reached
    with pytest.warns(DeprecationWarning, match="RECOMMENDED"):
        from morphlib.recommended import GOAL_PROB
    assert GOAL_PROB == RECOMMENDED_STRENGTH.goal
    with pytest.raises(TypeError, match="config= or the keywords"):
        morph(model, images[0], "3", MorphConfig(), family="pixel")


def test_import_morphlib_loads_no_torch():
    import subprocess
    import sys

    code = "import sys, morphlib, morphlib.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert morphlib.morph is morph and morphlib.MorphConfig is MorphConfig
