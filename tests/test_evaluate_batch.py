"""Batched morphs give each image what a morph of it alone gives (to float tolerance)."""

import pytest
import torch

from morphlib import BudgetUnreachable, MorphConfig, Strength, morph, morph_batch
from morphlib.data import load as load_data
from morphlib.zoo import load

SOURCES = [0, 1, 2, 3]


@pytest.fixture(scope="module")
def digits():
    model = load("digits-cnn-robust")
    images, labels, _ = load_data("digits", split="test", seed=0)
    images, labels = images[SOURCES], [int(labels[i]) for i in SOURCES]
    return model, images, labels, [(label + 1) % 10 for label in labels]


def one_at_a_time(model, images, targets, labels, **settings):
    results = []
    for image, target, label in zip(images, targets, labels, strict=True):
        try:
            results.append(morph(model, image, target, source=label, progress=False, **settings))
        except BudgetUnreachable as err:
            results.append(err)
    return results


def assert_same(single, batched):
    assert len(single) == len(batched)
    for a, b in zip(single, batched, strict=True):
        if isinstance(a, BudgetUnreachable):
            assert isinstance(b, BudgetUnreachable) and str(b) == str(a)
            continue
        assert (a.target, a.source, a.labels) == (b.target, b.source, b.labels)
        for name in ("frames", "alphas", "l2", "probs"):
            torch.testing.assert_close(getattr(b, name), getattr(a, name), rtol=1e-5, atol=1e-5)
        assert a.params.keys() == b.params.keys()
        for key, value in a.params.items():  # numbers to assert_close's tolerance (alpha_max = alphas[-1])
            close = pytest.approx(value, abs=1e-5 + 1e-5 * abs(value)) if isinstance(value, float) else value
            assert b.params[key] == close, key


@pytest.mark.parametrize("regime", ["frozen", "persistent", "step-local"])
@pytest.mark.parametrize("family", ["pixel", "csp-joint"])  # fourier-phase: below
def test_a_batch_equals_one_image_at_a_time(digits, regime, family):
    model, images, labels, targets = digits
    settings = dict(config=MorphConfig(family=family, regime=regime), strength=Strength.budget(3.0), frames=3)
    batched = morph_batch(model, images, targets, sources=labels, **settings)
    assert_same(one_at_a_time(model, images, targets, labels, **settings), batched)
    assert all(r.l2[-1] == pytest.approx(3.0, rel=0.011) for r in batched)


# Capped phase edits saturate (near L2 = 5 in one step on these digits, 8 to 14 in more):
# in each case some images cannot reach the budget, at some step, while others go on.
@pytest.mark.parametrize(
    ("regime", "frames", "budget", "cap", "reached"),
    [
        ("frozen", 3, 5.27, 0.3, 3),
        ("persistent", 3, 9.0, 0.5, 2),
        ("step-local", 3, 9.5, 0.3, 2),
        ("step-local", 4, 14.5, 0.3, 0),  # two leave at step 2, the other two at step 3
    ],
)
def test_images_that_cannot_reach_the_budget_leave_the_batch_and_the_rest_go_on(
    digits, regime, frames, budget, cap, reached
):
    model, images, labels, targets = digits
    config = MorphConfig(family="fourier-phase", regime=regime, phase_cap=cap)
    settings = dict(config=config, strength=Strength.budget(budget), frames=frames)
    single = one_at_a_time(model, images, targets, labels, **settings)
    assert sum(not isinstance(r, BudgetUnreachable) for r in single) == reached
    assert_same(single, morph_batch(model, images, targets, sources=labels, **settings))


def test_default_targets_sources_and_alpha_match_too(digits):
    model, images, labels, targets = digits
    names = [model.labels[t] for t in targets]  # label names resolve as in morph()
    batched = morph_batch(
        model,
        images,
        names,
        frames=4,
        config=MorphConfig(family="csp-phase"),
        strength=Strength.amplification(2.0),
    )
    single = [
        morph(
            model,
            x,
            t,
            frames=4,
            config=MorphConfig(family="csp-phase"),
            strength=Strength.amplification(2.0),
        )
        for x, t in zip(images, targets, strict=True)
    ]
    assert_same(single, batched)


def test_grey_and_colour_images_and_sizes_batch_separately(digits):
    model, images, labels, targets = digits
    colour = images[0].clone()
    colour[0] *= 0.5  # no longer three equal channels
    small = images[1][:, :24, :24]
    mixed = [images[2], colour, small]
    batched = morph_batch(
        model, mixed, targets[:3], frames=3, config=MorphConfig(family="pixel"), strength=Strength.budget(2.0)
    )
    single = [
        morph(model, x, t, frames=3, config=MorphConfig(family="pixel"), strength=Strength.budget(2.0))
        for x, t in zip(mixed, targets[:3], strict=True)
    ]
    assert_same(single, batched)


def test_bad_batches_are_refused(digits):
    model, images, labels, targets = digits
    with pytest.raises(ValueError, match="one target"):
        morph_batch(model, images, targets[:2])
    with pytest.raises(ValueError, match="unknown regime"):
        morph_batch(model, images, targets, config=MorphConfig(regime="sideways"))
