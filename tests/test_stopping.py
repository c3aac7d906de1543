"""Stopping rules: each ends a path where it says, in the engine as in the study, and the frame
count asked for is the frame count returned."""

from __future__ import annotations

import pytest
import torch

from morphlib import RECOMMENDED, MorphConfig, Strength, morph
from morphlib.data import load as load_data
from morphlib.engine.auto import STEPS
from morphlib.stopping import CHOICES, Goal, Track
from morphlib.zoo import load

#: p(target) along a made-up path of six frames, two classes, target 1, equal steps of L2 1.
P = [0.1, 0.3, 0.55, 0.8, 0.86, 0.87]


def _track() -> Track:
    p = torch.tensor(P, dtype=torch.float64)
    return Track.of(torch.stack([1 - p, p], dim=1), 1, torch.arange(6.0))


@pytest.mark.parametrize(
    ("spec", "stop"),
    [
        ("top-1", 2),  # p 0.55 is the first frame where class 1 wins
        ("p0.8", 3),
        ("p0.9", None),  # never: the path runs to the cap
        ("top-1+50%", 3),  # on from L2 2 to L2 3
        ("top-1+100%", 4),
        ("plateau0.1", 4),  # once top-1, the first rise under 0.1: 0.80 -> 0.86
        ("margin1", 3),  # log(0.8 / 0.2) = 1.39; log(0.55 / 0.45) = 0.2
        ("cap", None),
    ],
)
def test_each_rule_stops_where_it_says(spec, stop):
    assert Goal.parse(spec).stop(_track()) == stop


def test_specs_read_back_and_bad_ones_are_refused():
    for spec in CHOICES:
        assert Goal.parse(Goal.parse(spec).spec) == Goal.parse(spec)
    assert Goal.parse(0.9) == Goal("p", 0.9) and Goal.parse(0) == Goal() == Goal.parse(None)
    assert Goal.parse("p>=0.7") == Goal("p", 0.7) and Goal.parse("plateau") == Goal("plateau", 0.01)
    for bad, error in (
        ("sideways", ValueError),
        ("p1.5", ValueError),
        ("top-1+0%", ValueError),
        ([1], TypeError),
    ):
        with pytest.raises(error):
            Goal.parse(bad)
    with pytest.raises(ValueError, match="takes no value"):
        Goal("cap", 1.0)
    assert Strength.auto("top-1+50%").describe() == "auto (top-1 + 50 %, cap RMS 0.28)"


@pytest.fixture(scope="module")
def digit():
    images, labels, _ = load_data("mnist", "test", n=2, seed=0)
    return load("mnist-cnn-robust"), images[1], (int(labels[1]) + 3) % 10


@pytest.fixture(scope="module")
def whole_path(digit):
    """The default path walked to the cap, every step kept: what the study measures rules on."""
    model, image, target = digit
    return morph(model, image, target, RECOMMENDED, Strength.auto("cap"), frames=STEPS + 1, progress=False)


@pytest.mark.parametrize("spec", ["top-1", "p0.7", "top-1+50%", "plateau0.01", "margin2"])
def test_a_morph_ends_at_the_frame_the_study_reads_off_the_whole_path(digit, whole_path, spec):
    model, image, target = digit
    goal = Goal.parse(spec)
    track = Track.of(whole_path.probs, target, whole_path.l2)
    stop = goal.stop(track)
    assert stop is not None and 3 <= stop < STEPS  # each of these rules ends this path early
    result = morph(model, image, target, RECOMMENDED, Strength.auto(spec), frames=4, progress=False)
    # the walk stopped at that frame, and the video thins the walked path to the 4 frames asked for
    assert len(result.frames) == 4
    assert torch.allclose(result.frames[-1], whole_path.frames[stop], atol=1e-4)
    assert result.auto.reached == goal.reached(track, stop)


@pytest.mark.parametrize("frames", [2, 5, 9])
def test_the_frame_count_asked_for_is_returned_for_every_rule(digit, frames):
    model, image, target = digit
    for spec in ("top-1", "top-1+50%", "cap"):
        result = morph(model, image, target, RECOMMENDED, Strength.auto(spec), frames=frames, progress=False)
        assert len(result.frames) == len(result.probs) == len(result.l2) == frames, spec
        assert float(result.l2[0]) == 0.0 and torch.all(result.l2.diff() > 0), spec


def test_frozen_paths_stop_by_the_same_rules(digit):
    model, image, target = digit
    config = MorphConfig(family="pixel", regime="frozen")
    first = morph(model, image, target, config, Strength.auto("top-1"), frames=4, progress=False)
    later = morph(model, image, target, config, Strength.auto("top-1+50%"), frames=4, progress=False)
    assert first.auto.reached and later.auto.reached
    # a sample past top-1 at 1.5 times its distance (samples are 1/16 of the cap apart), or the cap
    cap_l2 = Strength.auto().cap_l2(image.numel())
    assert float(later.l2[-1]) >= min(1.5 * float(first.l2[-1]), cap_l2) * 0.97
    cap = morph(model, image, target, config, Strength.auto("cap"), frames=4, progress=False)
    assert float(cap.l2[-1]) == pytest.approx(cap_l2, rel=0.02)


def test_a_flip_short_of_a_stricter_goal_is_reported_as_a_flip():
    """A morph whose target wins but never leads by the margin says so, without the hint that
    something else should be tried (the real MNIST 5 toward 3 with the app's driver)."""
    images, _, _ = load_data("mnist", "test", n=1, seed=0)
    model = load("mnist-cnn-robust-eps3")
    result = morph(model, images[0], "3", RECOMMENDED, Strength.auto("margin3"), frames=4, progress=False)
    assert result.top1[-1] == "3" and not result.auto.reached
    assert "'3' is the top class at the end" in result.auto.message and "try" not in result.auto.message
