"""Renders the app shows: probabilities drawn on frames, change maps, side-by-side videos."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from morphlib import MorphResult
from morphlib.render import (
    PANEL_COLOURS,
    annotated_frames,
    change_map,
    message_tile,
    probability_panel,
    side_by_side,
    title_strip,
    write_gif,
    write_mp4,
)


def fake_result(frames: int = 5, size: int = 32) -> MorphResult:
    """A morph whose last frames brighten a 8x8 patch, target probability rising 0 -> 1."""
    x = torch.full((frames, 3, size, size), 0.2)
    for k in range(frames):
        x[k, :, 4:12, 20:28] += 0.6 * k / (frames - 1)
    p = torch.linspace(0, 1, frames)
    probs = torch.stack([1 - p, p, torch.zeros(frames)], dim=1)
    l2 = (x - x[0]).flatten(1).norm(dim=1).double()
    return MorphResult(x, torch.linspace(0, 1, frames).double(), l2, probs, ["cat", "dog", "fox"], 1, 0)


def colour_pixels(image: np.ndarray, colour) -> int:
    return int((np.abs(image.astype(int) - np.array(colour)).sum(-1) < 6).sum())


def test_annotated_frames_have_even_sides_and_a_panel_per_frame():
    r = fake_result()
    frames = annotated_frames(r)
    assert frames.dtype == np.uint8 and frames.shape[0] == 5
    assert frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
    assert frames.shape[2] == 256 and frames.shape[1] > 256  # 32 px enlarged x8, panel below
    assert np.array_equal(
        frames[0, :256], np.repeat(np.repeat(np.full((32, 32, 3), 51, np.uint8), 8, 0), 8, 1)
    )


def test_selected_frames_match_the_full_render():
    r = fake_result()
    assert np.array_equal(annotated_frames(r, indices=[3, -1]), annotated_frames(r)[[3, 4]])


def test_bars_follow_the_probabilities():
    r = fake_result()
    frames = annotated_frames(r)
    target = [colour_pixels(f[256:], PANEL_COLOURS["target"]) for f in frames]
    source = [colour_pixels(f[256:], PANEL_COLOURS["source"]) for f in frames]
    assert target[0] == 0 and source[-1] == 0
    assert all(a < b for a, b in zip(target, target[1:], strict=False))
    assert all(a > b for a, b in zip(source, source[1:], strict=False))


def test_panel_text_is_shortened_to_fit():
    panel = probability_panel(120, [("a very long class name " * 5, 0.5, (255, 0, 0))], footer="x" * 200)
    assert panel.shape[1] == 120 and panel.shape[0] % 2 == 0


def test_change_map_lights_up_where_the_image_changed():
    r = fake_result()
    heat = change_map(r, min_side=32)
    assert heat.shape == (32, 32, 3)
    changed, still = heat[4:12, 20:28].astype(int), heat[16:, :16].astype(int)
    assert changed.mean() > still.mean() + 60
    assert np.ptp(still.reshape(-1, 3), axis=0).max() == 0  # unchanged areas: one flat grey
    assert change_map(fake_result(), frame=0, min_side=32).std() == 0  # frame 0 changed nothing


def test_side_by_side_tiles_and_pads():
    a = np.zeros((4, 20, 30, 3), np.uint8)
    b = np.zeros((4, 26, 21, 3), np.uint8)
    out = side_by_side([a, b], ["a", "b"], gap=5)
    assert out.shape[0] == 4 and out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0
    assert out.shape[2] == 30 + 5 + 21
    grid = side_by_side([a, b, a, b], ["pixel", "b", "c", "d"], gap=5, columns=2)
    assert grid.shape[2] == out.shape[2] and 2 * out.shape[1] + 4 <= grid.shape[1] <= 2 * out.shape[1] + 6
    strip = title_strip(200, "pixel")
    ink = np.nonzero((strip < 128).any(-1).any(0))[0]
    assert abs((ink.min() + ink.max()) / 2 - 100) < 10  # the title is centred, clear of a player's label
    with pytest.raises(ValueError, match="same number of frames"):
        side_by_side([a, b[:3]], ["a", "b"])
    with pytest.raises(ValueError, match="one title per video"):
        side_by_side([a], ["a", "b"])


def test_message_tile_wraps_text():
    tile = message_tile(60, 80, "budget not reachable: the edit saturates at L2 = 6.5")
    assert tile.shape == (60, 80, 3) and (tile < 100).any()


def test_annotated_video_and_gif_loop_forward_and_back(tmp_path):
    frames = annotated_frames(fake_result(frames=6))
    mp4 = write_mp4(frames, tmp_path / "m.mp4")
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert count == 2 * 6 - 2
    from PIL import Image

    with Image.open(write_gif(frames, tmp_path / "m.gif")) as gif:
        assert gif.n_frames == 2 * 6 - 2 and gif.info.get("loop") == 0


def test_a_result_shows_itself_in_a_notebook():
    """MorphResult._repr_html_: the looping GIF inline and the per-frame numbers, labels escaped."""
    import base64
    import io
    import re

    from PIL import Image

    from morphlib import MorphConfig, Strength, morph
    from morphlib.zoo import load

    model = load("digits-cnn-robust")
    model.labels = [*model.labels[:9], "<b>9</b>"]  # a label that is markup must show as text
    image = torch.rand(3, 32, 32)
    result = morph(model, image, 9, MorphConfig(family="pixel"), Strength.budget(1.0), frames=4)
    html = result._repr_html_()
    gif = base64.b64decode(re.search(r"data:image/gif;base64,([A-Za-z0-9+/=]+)", html).group(1))
    assert Image.open(io.BytesIO(gif)).n_frames == 6  # 4 frames, ping-pong
    assert html.count("<tr>") == 1 + 4 and "&lt;b&gt;9&lt;/b&gt;" in html and "<b>9</b>" not in html


def test_saved_renders_show_the_probabilities_in_the_app_colours(tmp_path):
    """The CLI's GIF and MP4 are the app's frames (probability bars under each), and its plot draws the
    source and target in the colours of those bars."""
    from PIL import Image

    from morphlib.render import save_result

    r = fake_result()
    paths = save_result(r, tmp_path / "out")
    gif = Image.open(paths["gif"])
    assert gif.size[::-1] == annotated_frames(r).shape[1:3]
    gif.seek(4)
    last = np.asarray(gif.convert("RGB"))
    assert colour_pixels(last[256:], PANEL_COLOURS["target"]) > 100  # the target's bar, full
    plot = np.asarray(Image.open(paths["plot"]).convert("RGB"))
    assert (
        colour_pixels(plot, PANEL_COLOURS["target"]) > 50
        and colour_pixels(plot, PANEL_COLOURS["source"]) > 50
    )
