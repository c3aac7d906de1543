"""Automatic strength: the smallest budget at which the target wins, or a clear cap."""

from __future__ import annotations

import pytest
import torch
from _morph_models import bundled

from morphlib import MorphConfig, Strength, gradient, morph
from morphlib.data import load as load_data
from morphlib.engine import auto_strength

TOP1 = Strength.auto()


def auto_morph(
    model, image, target, *, family="csp-phase", regime="frozen", frames=16, max_budget=None, grad=None
):
    """A morph with auto strength (goal: top-1) capped at the L2 distance ``max_budget``."""
    cap = Strength.auto().cap_rms if max_budget is None else max_budget / image.numel() ** 0.5
    config = MorphConfig(family=family, regime=regime)
    result = morph(
        model, image, target, config, Strength.auto(cap_rms=cap), frames=frames, grad=grad, progress=False
    )
    return result, result.auto


@pytest.fixture(scope="module")
def digit():
    images, labels, _ = load_data("digits", split="test", n=1, seed=0)
    assert int(labels[0]) == 6
    return images[0]


def top1(grad, alpha):
    return grad.labels[int(grad.score(grad.render([alpha]))[0].argmax())]


def test_finds_the_smallest_budget_that_makes_the_target_top1(digit):
    g = gradient(bundled("digits-cnn-robust"), digit, "4", config=MorphConfig(family="pixel"))
    found = auto_strength(g, TOP1)
    assert found.reached and found.goal == "top-1"
    assert top1(g, found.alpha) == "4"
    assert top1(g, 0.95 * found.alpha) != "4"  # the pixel path is monotone here: smaller is not enough
    assert found.budget == pytest.approx(g.l2(found.alpha), rel=1e-4)
    assert 0 < found.budget < found.max_budget == pytest.approx(0.28 * g.image.numel() ** 0.5)
    assert "meets the goal (top-1)" in found.message


def test_a_stated_probability_is_reached_earlier_than_top1(digit):
    g = gradient(bundled("digits-cnn-robust"), digit, "4", config=MorphConfig(family="pixel"))
    low = auto_strength(g, Strength.auto(goal=0.05))
    assert low.reached and low.prob >= 0.05 and low.goal == "p >= 0.05"
    assert float(g.score(g.render([0.95 * low.alpha]))[0, g.target]) < 0.05
    assert low.budget < auto_strength(g, TOP1).budget


def test_cap_reached_first_is_reported_with_the_morph_at_the_cap(digit):
    g = gradient(bundled("digits-cnn-robust"), digit, "4", config=MorphConfig(family="csp-phase"))
    found = auto_strength(g, Strength.auto(cap_rms=6.0 / g.image.numel() ** 0.5))
    assert not found.reached
    assert found.budget == pytest.approx(6.0, rel=0.02)
    assert "never met the goal (top-1)" in found.message and "cap" in found.message


def test_a_phase_edit_that_saturates_below_the_cap_is_searched_up_to_its_limit():
    images, _, _ = load_data("orientation", split="test", n=1, seed=0)
    g = gradient(
        bundled("orientation-cnn-robust"), images[0], "45 degrees", config=MorphConfig(family="csp-phase")
    )
    found = auto_strength(g, Strength.auto(cap_rms=50.0 / g.image.numel() ** 0.5))
    assert found.saturated_at is not None and found.saturated_at < 50.0
    assert found.budget <= found.saturated_at * 1.001
    if not found.reached:
        assert "saturates" in found.message


def test_input_that_already_meets_the_goal_needs_no_strength(digit):
    g = gradient(bundled("digits-cnn-robust"), digit, "6", source="4")
    found = auto_strength(g, TOP1)
    assert found.reached and found.alpha == 0.0 and "already" in found.message


def test_bad_arguments(digit):
    g = gradient(bundled("digits-cnn-robust"), digit, "4", config=MorphConfig(family="pixel"))
    with pytest.raises(ValueError, match="needs an auto strength"):
        auto_strength(g, Strength.budget(1.0))


def test_no_backward_pass(digit):
    """The search renders and scores the cached gradient only: the model is never differentiated."""
    model = bundled("digits-cnn-robust")
    g = gradient(model, digit, "4", config=MorphConfig(family="pixel"))
    calls = []
    handle = model.register_full_backward_hook(lambda *a: calls.append(1))
    try:
        with torch.enable_grad():
            auto_strength(g, TOP1)
    finally:
        handle.remove()
    assert calls == []


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_a_uniform_image_gets_a_clear_error_not_a_crash(value):
    """A uniform image has no band-pass content: a phase edit cannot change it at all."""
    blank = torch.full((3, 32, 32), value)
    with pytest.raises(ValueError, match="does not change the image as shown|nothing for a csp-phase edit"):
        auto_strength(
            gradient(bundled("digits-cnn-robust"), blank, "4", config=MorphConfig(family="csp-phase")), TOP1
        )


@pytest.fixture(scope="module")
def mnist_digit():
    images, labels, _ = load_data("mnist", split="test", n=10, seed=0)
    return images[0], int(labels[0])


@pytest.mark.parametrize("family, regime", [("pixel", "persistent"), ("csp-joint", "step-local")])
def test_auto_morph_walks_an_iterative_path_until_the_target_wins(mnist_digit, family, regime):
    image, label = mnist_digit
    target = (label + 3) % 10
    cap = 0.28 * 28
    result, found = auto_morph(
        bundled("mnist-cnn-robust"), image, target, family=family, regime=regime, frames=6, max_budget=cap
    )
    assert found.reached and f"along the {regime} path" in found.message
    assert len(result.frames) == 6 and result.params["regime"] == regime
    assert int(result.probs[-1].argmax()) == target  # the last frame shown is the first that flips
    assert all(int(p.argmax()) != target for p in result.probs[:-1])
    assert found.budget == pytest.approx(float(result.l2[-1])) and 0 < found.budget <= cap * 1.01
    assert found.prob == pytest.approx(float(result.probs[-1, target]))
    # the frames are a path: distance from the input grows along it
    assert torch.all(result.l2[1:] > result.l2[:-1])


def test_auto_morph_says_when_the_cap_comes_first(mnist_digit):
    image, label = mnist_digit
    result, found = auto_morph(
        bundled("mnist-cnn-robust"),
        image,
        (label + 3) % 10,
        family="pixel",
        regime="persistent",
        max_budget=0.3,
    )
    assert not found.reached and "never met the goal (top-1)" in found.message and "cap" in found.message
    assert float(result.l2[-1]) == pytest.approx(0.3, rel=0.02)


def test_auto_morph_frozen_matches_auto_strength(digit):
    model = bundled("digits-cnn-robust")
    g = gradient(model, digit, "4", config=MorphConfig(family="pixel"))
    result, found = auto_morph(model, digit, "4", family="pixel", frames=5, grad=g)
    assert found == auto_strength(g, TOP1)
    assert result.alphas[-1] == pytest.approx(found.alpha) and result.top1[-1] == "4"
