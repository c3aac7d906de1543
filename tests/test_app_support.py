"""The app's UI-independent helpers: image decoding, settings and permalinks, examples, engine."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import morphlib.app.engine as engine_module
import morphlib.app.registry as registry_module
import morphlib.imaging as images_module
import morphlib.zoo.loaders as loaders
from morphlib.app.cache import revive_gradient
from morphlib.app.engine import (
    COMPARE_FAMILIES,
    Engine,
    GradientCache,
    ModelRegistry,
    OutputDirs,
    device_problem,
)
from morphlib.app.examples import example_by_name, find_example, load_examples
from morphlib.app.settings import MAX_FRAMES, Settings, parse_bool, wants_run
from morphlib.imaging import ImageError, fit_to_size, load_image
from morphlib.stopping import CHOICES
from morphlib.zoo import ModelUnavailableError, read_manifest
from morphlib.zoo.manifest import DEFAULT_MANIFEST


def png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kwargs.pop("format", "PNG"), **kwargs)
    return buffer.getvalue()


def png_with_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


# --------------------------------------------------------------------- images
def test_rgb_png_round_trips_exactly():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    loaded = load_image(png_bytes(Image.fromarray(array)))
    assert loaded.notes == [] and loaded.mode == "RGB" and loaded.original_size == (30, 20)
    assert torch.equal((loaded.image * 255).round().byte().permute(1, 2, 0), torch.from_numpy(array))


@pytest.mark.parametrize(
    ("image", "note"),
    [
        (Image.new("L", (16, 16), 128), "greyscale"),
        (Image.new("1", (16, 16), 1), "greyscale"),
        (Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "transparent"),
        (Image.new("LA", (16, 16), (0, 128)), "transparent"),
        (Image.new("P", (16, 16), 3), None),
    ],
)
def test_modes_become_rgb_with_a_note(image, note):
    loaded = load_image(png_bytes(image))
    assert loaded.image.shape == (3, 16, 16) and loaded.image.dtype == torch.float32
    assert 0 <= float(loaded.image.min()) <= float(loaded.image.max()) <= 1
    if note:
        assert any(note in n for n in loaded.notes), loaded.notes


def test_fully_transparent_pixels_become_white():
    loaded = load_image(png_bytes(Image.new("RGBA", (16, 16), (255, 0, 0, 0))))
    assert torch.allclose(loaded.image, torch.ones(3, 16, 16))


def test_sixteen_bit_greyscale_keeps_its_range():
    array = np.zeros((16, 16), dtype=np.uint16)
    array[:, 8:] = 65535
    array[0, 0] = 32768
    loaded = load_image(png_bytes(Image.fromarray(array)))
    assert loaded.mode.startswith("I")
    assert float(loaded.image[0, 0, 0]) == pytest.approx(0.5, abs=1e-4)
    assert float(loaded.image[:, :, 8:].min()) == 1.0 and float(loaded.image[:, 1:, :8].max()) == 0.0
    assert any("16-bit" in n for n in loaded.notes)


def test_sixteen_bit_greyscale_is_scaled_by_its_full_range_whatever_its_contents():
    dark = load_image(png_bytes(Image.fromarray(np.full((16, 16), 200, np.uint16))))
    assert dark.mode.startswith("I;16")
    assert float(dark.image.max()) == pytest.approx(200 / 65535, abs=1e-6)  # not 200 / 255


def png_rgb16(value: int, size: int = 16) -> bytes:
    """A 48-bit RGB PNG (PIL cannot write one) of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + np.full((size, 3), value, ">u2").tobytes()
    header = struct.pack(">IIBBBBB", size, size, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_colour_is_reduced_to_eight_bits_with_a_note():
    loaded = load_image(png_rgb16(40000))
    assert loaded.mode == "RGB" and float(loaded.image.mean()) == pytest.approx(40000 / 65535, abs=2 / 255)
    assert "16 bits per channel: reduced to 8" in loaded.notes, loaded.notes
    assert not load_image(png_bytes(Image.new("RGB", (16, 16)))).notes


def test_float_tiff_and_cmyk_jpeg():
    floats = load_image(png_bytes(Image.fromarray(np.full((16, 16), 0.25, np.float32)), format="TIFF"))
    assert float(floats.image.mean()) == pytest.approx(0.25)
    cmyk = load_image(png_bytes(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), format="JPEG"))
    assert cmyk.image[0].mean() > 0.8 and cmyk.image[1].mean() < 0.2 and "CMYK" in cmyk.notes[0]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), "black")
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees clockwise on display
    loaded = load_image(png_bytes(image, format="JPEG", exif=exif.tobytes()))
    assert loaded.image.shape == (3, 40, 20)


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("RGB", (3000, 2000), (10, 200, 30)), "JPEG"),
        (Image.new("RGB", (3000, 2000), (10, 200, 30)), "PNG"),
        (Image.new("RGBA", (3000, 2000), (10, 200, 30, 255)), "PNG"),
        (Image.new("L", (3000, 2000), 90), "PNG"),
        (Image.new("RGB", (3000, 2000), (10, 200, 30)).convert("P"), "PNG"),
        (Image.fromarray(np.full((2000, 3000), 40000, np.uint16)), "PNG"),
    ],
    ids=["jpeg", "rgb", "rgba", "grey", "palette", "16-bit"],
)
def test_large_images_are_decoded_reduced_to_what_the_model_needs(image, fmt, monkeypatch):
    """With ``fit_to``, no full-size float array is ever made: PIL hands over a reduced image."""
    seen = []
    to_array = images_module._to_array
    monkeypatch.setattr(
        images_module, "_to_array", lambda im, notes: seen.append(im.size) or to_array(im, notes)
    )
    full = load_image(png_bytes(image, format=fmt))
    loaded = load_image(png_bytes(image, format=fmt), fit_to=(224, 224))
    assert loaded.original_size == (3000, 2000) and seen[-1][1] >= 448 and seen[-1][1] < 1000
    assert any("decoded at" in n for n in loaded.notes)
    small, _ = fit_to_size(loaded.image, (224, 224))
    reference, _ = fit_to_size(full.image, (224, 224))
    assert (small - reference).abs().max() < 0.02  # the same picture for the model


def test_a_reduced_decode_keeps_the_exif_orientation():
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees clockwise on display
    data = png_bytes(Image.new("RGB", (4000, 2000), "black"), format="JPEG", exif=exif.tobytes())
    loaded = load_image(data, fit_to=(32, 32))
    assert loaded.image.shape[1] > loaded.image.shape[2]  # portrait, as displayed


def test_the_result_store_is_bounded_and_expires(monkeypatch):
    from morphlib.app.outputs import ResultStore

    store = ResultStore(max_items=3, max_bytes=1000, ttl_s=60, nbytes=len)
    keys = [store.put(b"x" * 400) for _ in range(3)]
    assert store.get(keys[0]) is None and store.bytes <= 1000 and len(store) == 2
    assert store.get("a key never given") is None and store.get(None) is None
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 61)
    assert store.get(keys[-1]) is None and len(store) == 0 and store.bytes == 0


def test_animated_gif_uses_its_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    loaded = load_image(png_bytes(frames[0], format="GIF", save_all=True, append_images=frames[1:]))
    assert loaded.image[0].mean() > 0.9 and loaded.image[2].mean() < 0.1
    assert any("animated" in n for n in loaded.notes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not an image", "not an image"),
        (b"", "empty"),
        (png_bytes(Image.new("RGB", (64, 64), "red"))[:60], "corrupt|could not be decoded"),
        (png_bytes(Image.new("RGB", (5, 40))), "only 5×40 pixels"),
        (png_with_size(8000, 8000), "64 megapixels; the limit is 40"),
        (png_with_size(30000, 30000), "too large"),
    ],
)
def test_bad_images_get_clear_messages(data, message):
    start = time.perf_counter()
    with pytest.raises(ImageError, match=message):
        load_image(data)
    assert time.perf_counter() - start < 1.0  # bombs are refused from the header, not decoded


def test_truncated_jpeg_and_size_limits(tmp_path):
    rng = np.random.default_rng(0)
    jpeg = png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), format="JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(jpeg[: len(jpeg) // 2])
    path = tmp_path / "big.png"
    path.write_bytes(jpeg)
    with pytest.raises(ImageError, match="the limit is"):
        load_image(path, max_bytes=1000)
    with pytest.raises(ImageError, match="no image file"):
        load_image(tmp_path / "missing.png")


def test_fit_to_size_keeps_the_aspect_and_centre_crops():
    image = torch.zeros(3, 100, 300)
    image[0, :, 100:200] = 1.0  # a red middle third
    fitted, note = fit_to_size(image, (32, 32))
    assert fitted.shape == (3, 32, 32) and float(fitted[0].mean()) > 0.95
    assert "centre-cropped to 32×32" in note
    same, none = fit_to_size(fitted, (32, 32))
    assert same is fitted and none is None
    tiny, note = fit_to_size(torch.rand(3, 10, 10), (32, 32))
    assert tiny.shape == (3, 32, 32) and note.startswith("enlarged from 10×10")


def test_fit_to_size_crops_a_long_strip_before_resizing_it(monkeypatch):
    sizes = []
    interpolate = images_module.F.interpolate

    def spy(x, *args, **kwargs):
        out = interpolate(x, *args, **kwargs)
        sizes.extend([x.numel(), out.numel()])
        return out

    monkeypatch.setattr(images_module.F, "interpolate", spy)
    strip = torch.zeros(3, 8, 200_000)
    strip[:, :, 100_000 - 4 : 100_000 + 4] = 1.0  # the centre square is white
    fitted, note = fit_to_size(strip, (32, 32))
    assert fitted.shape == (3, 32, 32) and float(fitted.min()) == 1.0
    assert "enlarged from 200000×8 and centre-cropped to 32×32" in note
    assert max(sizes) <= 3 * 32 * 32  # only the 8×8 centre is resized, not a 32×800000 image


# --------------------------------------------------------------------- settings and permalinks
CASES = [
    Settings(model="digits-cnn", target="8"),
    Settings(model="orientation-cnn-robust", target="45 degrees", example="grating-90", family="pixel"),
    Settings(
        model="resnet50-l2-eps3",
        target="tabby, tabby cat",
        example="cat",
        family="csp-joint",
        regime="step-local",
        mode="budget",
        strength=12.5,
        frames=24,
        orientations=6,
        bandwidth="half-octave",
        luma_only=True,
        phase_cap=1.5,
        smooth_sigma=0.75,
    ),
    Settings(model="digits-cnn", target="3", mode="auto", goal="top-1+50%", strength=20.0),
]


@pytest.mark.parametrize("settings", CASES)
def test_permalinks_round_trip(settings):
    link = settings.link("http://127.0.0.1:7860/")
    restored, warnings = Settings.from_query(link)
    assert restored == settings and warnings == []
    assert Settings.from_query(settings.to_query())[0] == settings
    assert wants_run(link) == bool(settings.example)


def test_permalinks_are_short_and_readable():
    link = Settings(model="digits-cnn", target="tabby, tabby cat", family="pixel").link("https://x.hf.space")
    assert link == "https://x.hf.space?model=digits-cnn&target=tabby%2C+tabby+cat&family=pixel"


def test_bad_query_parameters_are_skipped_with_warnings():
    settings, warnings = Settings.from_query("?frames=1000&family=warp&luma=maybe&mode=budget&zoom=2")
    assert settings == Settings(mode="budget")
    assert len(warnings) == 4
    assert any("frames" in w and str(MAX_FRAMES) in w for w in warnings)
    assert any("unknown family 'warp'" in w for w in warnings)
    assert any("unknown parameter 'zoom'" in w for w in warnings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frames": 1}, "frames must be at least 2"),
        ({"frames": 2.5}, "frames must be an integer"),
        ({"strength": -1.0}, "strength must be at least 0"),
        ({"family": "csp-amplitudes"}, "unknown family"),
        ({"orientations": 1}, "orientations"),
        ({"goal": "p1.5"}, "unknown goal 'p1.5'"),
        ({"goal": "sideways"}, "unknown goal"),
    ],
)
def test_validation_names_the_bad_setting(changes, message):
    with pytest.raises(ValueError, match=message):
        Settings(**changes).validated()


def test_every_stopping_rule_is_offered_and_survives_a_link():
    for goal in CHOICES:
        assert Settings.from_query(Settings(goal=goal).to_query()) == (Settings(goal=goal), [])
    assert Settings.from_query("goal=p0.95")[1]  # not one of the rules offered: a warning


@pytest.mark.parametrize("value", [0.1234567, 1 / 3, 12.5, 3.0, 1e-7, 9999.0625])
def test_floats_round_trip_exactly_through_links(value):
    s = Settings(model="m", strength=value, smooth_sigma=value % 100)
    assert Settings.from_query(s.to_query()) == (s, [])
    assert "strength=3&" in Settings(strength=3.0, goal="p0.5").to_query() + "&"


def test_gradio_query_parameters_are_ignored_silently():
    settings, warnings = Settings.from_query("?__theme=dark&view=api&__lang=fr&frames=8&colour=red")
    assert settings == Settings(frames=8) and warnings == ["ignored unknown parameter 'colour'"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("false", False),
        ("False", False),
        ("0", False),
        ("true", True),
        ("1", True),
        (1, True),
        (0, False),
    ],
)
def test_booleans_are_parsed_not_cast(value, expected):
    assert parse_bool("luma_only", value) is expected


@pytest.mark.parametrize("value", ["maybe", "", 2, None, [1]])
def test_bad_booleans_are_refused(value):
    with pytest.raises(ValueError, match="luma_only must be true or false"):
        parse_bool("luma_only", value)


# --------------------------------------------------------------------- examples
def test_examples_exist_with_licences_and_known_models():
    examples = load_examples()
    listed = yaml.safe_load((Path(examples[0].file).parent / "examples.yaml").read_text())["examples"]
    assert len(examples) == len(listed) >= 8
    zoo = read_manifest()
    for e in examples:
        assert e.licence and e.model in zoo, e
    assert {"cat", "coffee", "rocket", "astronaut"} <= {e.name for e in examples}
    assert "cat" in (Path(examples[0].file).parents[1] / "README.md").read_text()


def test_only_files_of_an_examples_size_are_hashed(tmp_path, monkeypatch):
    import morphlib.app.examples as examples_module

    hashed = []
    digest = examples_module._digest
    monkeypatch.setattr(examples_module, "_digest", lambda p: hashed.append(Path(p)) or digest(p))
    other = tmp_path / "big.png"
    other.write_bytes(b"x" * 3_000_000)
    assert find_example(other) is None and other not in hashed


def test_an_uploaded_copy_of_an_example_is_recognised(tmp_path):
    copy = tmp_path / "upload.png"
    copy.write_bytes(example_by_name("digit-7").file.read_bytes())
    assert find_example(copy).name == "digit-7"
    copy.write_bytes(copy.read_bytes() + b"\0")
    assert find_example(copy) is None
    with pytest.raises(ValueError, match="unknown example 'dog'"):
        example_by_name("dog")


# --------------------------------------------------------------------- engine
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine(outputs=OutputDirs(tmp_path_factory.mktemp("outputs")))


DIGIT = example_by_name("digit-3").file


def test_predict_gives_top5_and_the_runner_up(engine):
    p = engine.predict(DIGIT, "digits-cnn-robust")
    assert [label for label, _ in p.top][0] == "3" and len(p.top) == 5
    assert p.suggestion == p.top[1][0] and p.labels == [str(i) for i in range(10)]
    assert sum(prob for _, prob in p.top) <= 1.0 + 1e-6


def test_morph_renders_and_caches_the_gradient(engine):
    s = Settings(model="digits-cnn-robust", target="9", mode="budget", strength=3.0, frames=5)
    start = time.perf_counter()
    first = engine.morph(DIGIT, s)
    wall = time.perf_counter() - start
    assert not first.cached and first.result.frames.shape[0] == 5
    assert float(first.result.l2[-1]) == pytest.approx(3.0, rel=0.01)
    assert first.result.target_probs[-1] > first.result.target_probs[0]
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(first.video))
    assert count == 2 * 5 - 2
    assert first.change.is_file() and first.change.stat().st_size > 0
    assert first.frames.shape[0] == 5 and first.frames.shape[2] == 256  # drawn once, for video and scrubber
    curves = first.curves  # the plot's data: one row per frame and class
    assert len(curves) == 10 and set(curves["class"]) == {"source: 3", "target: 9"}
    assert first.gif is None  # the GIF only when asked for
    gif = engine.gif(first)
    with Image.open(gif) as g:
        assert g.n_frames == 2 * 5 - 2 and engine.gif(first) == gif
    assert first.summary["gradient_cached"] is False and len(first.summary["frames"]) == 5
    seconds = first.summary["seconds"]  # the server's own time, as the app benchmark reads it
    assert seconds["morph"] > 0 and seconds["render"] > 0 and seconds["morph"] + seconds["render"] <= wall
    again = engine.morph(DIGIT, Settings(**{**s.as_dict(), "strength": 5.0, "frames": 7}))
    assert again.cached and again.result.frames.shape[0] == 7 and "cache" in again.message


def test_small_models_run_on_one_cpu_thread_and_the_count_comes_back(engine):
    def counts() -> list[int]:
        seen = [torch.get_num_threads()]
        with engine.cpu_threads("digits-cnn-robust"):  # 32 x 32
            seen.append(torch.get_num_threads())
        for model in ("resnet50", "no-such-model"):  # 224 x 224; unknown: left as it is
            with engine.cpu_threads(model):
                seen.append(torch.get_num_threads())
        return seen + [torch.get_num_threads()]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert counts() == [2, 1, 2, 2, 2]
        worker: list = []  # as in a Gradio worker thread
        thread = threading.Thread(target=lambda: worker.extend(counts()))
        thread.start()
        thread.join()
        assert worker[1] == 1 and worker[0] == worker[-1] == worker[2]
    finally:
        torch.set_num_threads(before)


def test_progress_updates_are_throttled():
    seen = []
    update = engine_module._throttled(lambda f, d: seen.append((f, d)), interval=3600.0)
    for fraction in (0.02, 0.1, 0.35, 0.5, 1.0):
        update(fraction, f"at {fraction}")
    assert seen == [(0.02, "at 0.02"), (1.0, "at 1.0")]  # the first, then nothing but the last
    every = []
    update = engine_module._throttled(lambda f, d: every.append(f), interval=0.0)
    for fraction in (0.02, 0.1, 1.0):
        update(fraction, "")
    assert every == [0.02, 0.1, 1.0]


def test_a_morph_reports_every_phase_however_fast_its_steps(engine):
    seen = []
    s = Settings(model="digits-cnn-robust", target="9", mode="budget", strength=2.0, frames=6)
    engine.morph(DIGIT, replace(s, regime="persistent", family="pixel"), progress=lambda f, d: seen.append(d))
    phases = [d for d in seen if "steps" not in d]
    assert phases[0].startswith("loading") and phases[-1] == "done"
    assert any("gradient" in d for d in phases) and any("encoding" in d for d in phases)
    assert any("persistent steps" in d for d in seen)  # the first step update always passes


def test_the_message_counts_the_gradients_of_the_regime(engine):
    s = Settings(model="digits-cnn-robust", target="9", mode="budget", strength=2.0, frames=4)
    frozen = engine.morph(DIGIT, replace(s, regime="frozen", family="pixel")).message
    assert ("one backward pass" in frozen or "Gradient reused" in frozen) and "per step" not in frozen
    path = engine.morph(DIGIT, replace(s, regime="persistent", family="pixel")).message
    assert "One gradient (backward pass) per step of the path, the first one" in path
    assert "one backward pass" not in path and "Gradient reused" not in path
    done = engine.morph(DIGIT, replace(s, mode="auto", strength=0.0, target="3", regime="step-local")).message
    assert "already meets the goal" in done and "per step" not in done  # no path was walked


def test_auto_strength_reaches_the_target(engine):
    s = Settings(model="digits-cnn-robust", target="9", family="pixel", frames=4)
    out = engine.morph(DIGIT, s)
    assert out.auto is not None and out.auto.reached
    assert out.result.top1[-1] == "9" and "Auto strength" in out.message


def test_user_errors_are_value_errors_with_messages(engine):
    with pytest.raises(ValueError, match="unknown class 'eleven'"):
        engine.morph(DIGIT, Settings(model="digits-cnn-robust", target="eleven"))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        engine.predict(DIGIT, "nope")
    with pytest.raises(ValueError, match="amplification mode needs a strength"):
        engine.morph(DIGIT, Settings(model="digits-cnn-robust", target="9", mode="alpha"))
    with pytest.raises(ValueError, match="no image"):
        engine.predict(None, "digits-cnn-robust")
    too_far = Settings(model="digits-cnn-robust", target="9", mode="budget", strength=500.0)
    with pytest.raises(ValueError, match="cannot be reached"):
        engine.morph(DIGIT, replace(too_far, family="csp-phase", regime="frozen"))
    with pytest.raises(ValueError, match="the L2 budget 500 cannot be reached along the step-local path"):
        engine.morph(DIGIT, replace(too_far, family="csp-joint", regime="step-local"))


def test_unavailable_models_explain_themselves(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    entries = [m for m in zoo["models"] if m["id"] in ("digits-cnn", "resnet50")]
    entries.append({**entries[0], "id": "ghost", "weights": "assets/ghost"})
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": entries}))
    registry = ModelRegistry(manifest)
    status = {c.id: c for c in registry.choices()}
    assert status["digits-cnn"].available and "ready" in status["digits-cnn"].label
    assert status["resnet50"].location == "download" and "downloads on first use" in status["resnet50"].label
    assert not status["ghost"].available and "weights missing" in status["ghost"].label
    assert "downloaded from the Hugging Face Hub" in registry.describe("resnet50")
    engine = Engine(registry, outputs=OutputDirs(tmp_path / "out"))
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        engine.predict(DIGIT, "resnet50")
    with pytest.raises(ModelUnavailableError, match="no weights"):
        engine.predict(DIGIT, "ghost")
    assert registry.default() == "digits-cnn"


def bad_weights_zoo(tmp_path, monkeypatch) -> Path:
    """A zoo of digits-cnn's architecture with (1) truncated weights, (2) another model's weights."""
    monkeypatch.setattr(loaders, "REPO_ROOT", tmp_path)
    base = next(m for m in yaml.safe_load(DEFAULT_MANIFEST.read_text())["models"] if m["id"] == "digits-cnn")
    assets = DEFAULT_MANIFEST.parent / "assets"
    shapes = (assets / "shapes-cnn" / "model.safetensors").read_bytes()  # 5 classes, not 10
    for name, weights in (("truncated", shapes[:200]), ("mismatch", shapes)):
        folder = tmp_path / "assets" / name
        folder.mkdir(parents=True)
        (folder / "config.json").write_bytes((assets / "digits-cnn" / "config.json").read_bytes())
        (folder / "model.safetensors").write_bytes(weights)
    entries = [{**base, "id": f"bad-{n}", "weights": f"assets/{n}"} for n in ("truncated", "mismatch")]
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"models": entries}))
    return manifest


def test_corrupt_or_incompatible_weights_give_a_clear_message(tmp_path, monkeypatch):
    registry = ModelRegistry(bad_weights_zoo(tmp_path, monkeypatch))
    for model_id, cause in (("bad-truncated", "SafetensorError"), ("bad-mismatch", "size mismatch")):
        with pytest.raises(ModelUnavailableError, match=f"'{model_id}'.*corrupt or incompatible") as err:
            registry.load(model_id)
        assert cause in str(err.value) and len(str(err.value)) < 500


def test_device_problems_are_named(monkeypatch):
    assert device_problem("auto") is None and device_problem("cpu") is None
    assert "unknown device 'gpu'" in device_problem("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in device_problem("cuda")
    assert "CUDA is not available" in device_problem("cuda:1")


def test_a_slow_load_blocks_neither_other_models_nor_loads_itself_twice(monkeypatch):
    registry = ModelRegistry()
    registry.load("digits-cnn")
    real, release, calls = registry_module.load, threading.Event(), []

    def slow(model_id, **kwargs):
        calls.append(model_id)
        if model_id == "shapes-cnn":
            assert release.wait(30)
        return real(model_id, **kwargs)

    monkeypatch.setattr(registry_module, "load", slow)
    loading = [threading.Thread(target=registry.load, args=("shapes-cnn",)) for _ in range(2)]
    for thread in loading:
        thread.start()
    try:
        for model_id in ("digits-cnn", "orientation-cnn"):  # cached, and not loaded yet
            other = threading.Thread(target=registry.load, args=(model_id,))
            other.start()
            other.join(20)
            assert not other.is_alive(), f"{model_id} waited for another model's load"
    finally:
        release.set()
        for thread in loading:
            thread.join(30)
    assert calls.count("shapes-cnn") == 1 and registry.load("shapes-cnn") is registry.load("shapes-cnn")


def test_extra_models_registered_in_code(tmp_path):
    from morphlib.zoo import load

    model = load("digits-cnn")
    registry = ModelRegistry(extra={"my-digits": model})
    engine = Engine(registry, outputs=OutputDirs(tmp_path))
    assert registry.choice("my-digits").available
    assert engine.predict(DIGIT, "my-digits").top[0][0] == "3"


def test_compare_families_at_one_budget(engine):
    s = Settings(model="digits-cnn-robust", target="9", frames=3)
    out = engine.compare(DIGIT, s, budget=3.0)
    assert [row[0] for row in out.rows] == list(COMPARE_FAMILIES)
    for row in out.rows:
        assert row[1] == pytest.approx(3.0, rel=0.01) and row[5] == ""
    count, _ = imageio_ffmpeg.count_frames_and_secs(str(out.video))
    assert count == 2 * 3 - 2


def test_compare_reports_a_family_that_cannot_reach_the_budget(engine):
    grating = example_by_name("grating-90").file
    out = engine.compare(
        grating, Settings(model="orientation-cnn-robust", frames=2, regime="frozen"), budget=12.0
    )
    failed = {row[0]: row[5] for row in out.rows if row[5]}
    assert "csp-phase" in failed and "cannot be reached" in failed["csp-phase"]
    assert "pixel" not in failed and out.video.is_file()


def test_gradient_cache_is_a_bounded_lru():
    cache = GradientCache(capacity=2)
    for key in "abac":  # "a" is used again, so "c" evicts "b"
        cache.get(key, lambda k=key: k)
    assert (cache.hits, cache.misses, len(cache)) == (1, 3, 2)
    assert cache.get("a", lambda: "new") == ("a", True)
    assert cache.get("b", lambda: "new") == ("new", False)
    off = GradientCache(capacity=0)
    off.get("a", lambda: 1)
    assert off.get("a", lambda: 2) == (2, False)


def test_output_dirs_are_pruned_and_removed(tmp_path):
    outputs = OutputDirs(tmp_path / "root", keep=3)
    made = [outputs.new() for _ in range(5)]
    alive = [d for d in made if d.exists()]
    assert len(alive) == 3 and alive == made[-3:]
    outputs.cleanup()
    assert not (tmp_path / "root").exists()


def test_gradients_travel_between_processes_as_plain_data(engine):
    """What a ZeroGPU call exports (tensors on the CPU, no model) revives into the same gradient."""
    s = Settings(model="digits-cnn-robust", target="4", mode="budget", strength=2.0, frames=3)
    engine.cache.export()  # forget what earlier tests computed
    first = engine.morph(DIGIT, s)
    exported = engine.cache.export()
    assert len(exported) == 1 and isinstance(exported[0][1], dict) and engine.cache.export() == []
    home = GradientCache(4)
    home.add_exported(exported)
    key, _ = exported[0]
    model = engine.registry.load("digits-cnn-robust")
    revived, cached = home.get(
        key, lambda: pytest.fail("recomputed"), revive=lambda d: revive_gradient(d, model)
    )
    original = engine.cache.get(key, lambda: pytest.fail("recomputed"))[0]
    assert cached and revived.model is model and revived.target == original.target
    assert all(torch.equal(a, b) for a, b in zip(revived.direction, original.direction, strict=True))
    assert torch.equal(revived.render([1.0]), original.render([1.0]))
    assert first.result.frames.shape[0] == 3


def test_preloaded_models_are_never_evicted():
    registry = ModelRegistry(capacity=1)
    ready = registry.preload()
    assert "digits-cnn-robust" in ready and len(ready) > 1
    assert {mid for mid, _ in registry._loaded} == set(ready)  # more than its capacity of 1


def test_a_standard_imagenet_model_is_described_as_such():
    """The paper's point, said where a user picks the model: standard models' morphs look adversarial."""
    registry = ModelRegistry()
    assert "adversarial noise" in registry.describe("efficientnet-lite0")
    assert "adversarial noise" not in registry.describe("resnet50-l2-eps3")


def test_a_photo_sent_to_a_digit_model_is_said_to_be_out_of_its_domain(engine):
    from morphlib.app.examples import example_by_name

    photo = example_by_name("cat").file
    notes = engine.predict(photo, "mnist-cnn-robust").notes
    assert notes and "Outside what this model knows" in notes[0] and "colour" in notes[0]
    assert not any(
        "Outside" in n for n in engine.predict(example_by_name("mnist-3").file, "mnist-cnn-robust").notes
    )
