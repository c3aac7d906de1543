"""Render a morph: frames, looping GIF and MP4, contact sheet, probability plot, JSON summary.

Small images (digits are 28–32 px) are enlarged with nearest-neighbour so that videos and
sheets stay crisp; videos are H.264/yuv420p with even sides (what browsers and
``gr.Video`` play), encoded with the ffmpeg binary that ``imageio-ffmpeg`` ships.
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from .imaging import to_uint8 as _pixels

if TYPE_CHECKING:
    from .engine import MorphResult

MIN_VIDEO_SIDE = 256


def to_uint8(frames: Tensor) -> np.ndarray:
    """``(F, C, H, W)`` floats in ``[0, 1]`` to ``(F, H, W, 3)`` uint8 (grey becomes RGB)."""
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    return _pixels(frames)


def upscale(frames: np.ndarray, min_side: int = MIN_VIDEO_SIDE) -> np.ndarray:
    """Enlarge ``(F, H, W, 3)`` by a whole nearest-neighbour factor up to ``min_side``; make sides even."""
    h, w = frames.shape[1:3]
    factor = max(1, math.ceil(min_side / min(h, w)))
    if factor > 1:
        frames = frames.repeat(factor, axis=1).repeat(factor, axis=2)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def ping_pong(frames: np.ndarray) -> np.ndarray:
    """Forward then backward (without repeating the end frames), for a seamless loop."""
    if len(frames) < 3:
        return frames
    return np.concatenate([frames, frames[-2:0:-1]])


def write_gif(frames: np.ndarray, path: str | Path | io.BytesIO, fps: float = 8.0, loop: bool = True) -> Path:
    """Write an animated GIF that loops forever (to a file, or into a ``BytesIO``).

    Each frame gets its own 256-colour palette by fast octree quantisation: some 30 times
    faster than Pillow's default (median cut) on photographs, and just as good to the eye.
    """
    fast = Image.Quantize.FASTOCTREE
    images = [Image.fromarray(f).quantize(256, method=fast) for f in (ping_pong(frames) if loop else frames)]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(round(1000 / fps)),
        loop=0,
        optimize=False,
    )
    return Path(path) if not isinstance(path, io.BytesIO) else Path()


def html_view(result: MorphResult, min_side: int = 160, fps: float = 6.0) -> str:
    """The morph as HTML for a notebook: its looping GIF (probabilities drawn on every frame)
    beside a table of the per-frame numbers."""
    import base64
    import html

    buffer = io.BytesIO()
    write_gif(annotated_frames(result, min_side=min_side), buffer, fps=fps)
    gif = base64.b64encode(buffer.getvalue()).decode("ascii")
    src, tgt = (html.escape(result.labels[i]) for i in (result.source, result.target))
    head = f"<tr><th>frame</th><th>α</th><th>L2</th><th>p({src})</th><th>p({tgt})</th><th>top-1</th></tr>"
    rows = "".join(
        f"<tr><td>{k}</td><td>{float(result.alphas[k]):.3g}</td><td>{float(result.l2[k]):.3g}</td>"
        f"<td>{float(result.source_probs[k]):.3f}</td><td>{float(result.target_probs[k]):.3f}</td>"
        f"<td>{html.escape(top1)}</td></tr>"
        for k, top1 in enumerate(result.top1)
    )
    title = html.escape(f"{result.params.get('family')} / {result.params.get('regime')}: {src} → {tgt}")
    return (
        f'<div style="display:flex;gap:1em;align-items:flex-start"><figure style="margin:0">'
        f'<img src="data:image/gif;base64,{gif}" alt="morph"/><figcaption>{title}</figcaption></figure>'
        f'<table style="font-size:smaller">{head}{rows}</table></div>'
    )


def write_mp4(
    frames: np.ndarray, path: str | Path, fps: float = 8.0, loop: bool = True, preset: str = "medium"
) -> Path:
    """Write an H.264 (yuv420p) MP4; frame sides must be even.

    ``preset`` is x264's speed/size trade-off: ``"ultrafast"`` encodes a 30-frame 256-px
    clip several times faster than ``"medium"`` for a file some 2.5 times larger (still
    tens of kB), which is what an interactive app wants.
    """
    encoder = open_mp4(path, frames.shape[1:3], fps=fps, preset=preset)
    return encoder.finish(ping_pong(frames) if loop else frames)


class open_mp4:  # noqa: N801 - used like a function: open_mp4(...).finish(frames)
    """An MP4 encoder started now (the ffmpeg process starts while the caller draws the frames),
    fed and closed by :meth:`finish`. Sides ``(height, width)`` must be even.

    ffmpeg (the binary ``imageio-ffmpeg`` ships) is started in its own process group, as
    ``imageio_ffmpeg.write_frames`` does so that Ctrl-C reaches only Python, but through
    ``process_group`` rather than a ``preexec_fn``: that lets Python spawn it without copying
    its own (large) memory map first, which cost some 70 ms of CPU per video.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float = 8.0, preset: str = "medium"):
        import subprocess
        from fractions import Fraction

        import imageio_ffmpeg

        h, w = size
        if h % 2 or w % 2:
            raise ValueError(f"MP4 frames need even sides, got {h}x{w}; pass them through upscale()")
        self.path, self.size = Path(path), (h, w)
        rate = str(Fraction(fps).limit_denominator())
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ]
        command += ["-s", f"{w}x{h}", "-r", rate, "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
        command += ["-crf", "25", "-preset", preset, "-movflags", "+faststart", str(path)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0
        )

    def finish(self, frames: np.ndarray) -> Path:
        """Encode ``frames`` ``(F, H, W, 3)`` uint8 (in that order; no ping-pong) and close the file."""
        process = self._process
        try:
            if tuple(frames.shape[1:3]) != self.size:
                raise ValueError(f"frames of {frames.shape[1:3]} sent to an MP4 of {self.size}")
            process.stdin.write(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())
        finally:
            _, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"ffmpeg could not write {self.path.name}: {errors.decode(errors='replace')[-500:]}"
            )
        return self.path


def contact_sheet(result: MorphResult, columns: int = 8, min_side: int = 96) -> Image.Image:
    """A grid of the frames, each captioned with its amplification, L2 and target probability."""
    tiles = upscale(to_uint8(result.frames), min_side=min_side)
    n, h, w = tiles.shape[:3]
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    caption = 30
    sheet = Image.new("RGB", (columns * (w + 4) + 4, rows * (h + caption + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    target = result.labels[result.target]
    for k in range(n):
        x = 4 + (k % columns) * (w + 4)
        y = 4 + (k // columns) * (h + caption + 4)
        sheet.paste(Image.fromarray(tiles[k]), (x, y))
        text = (
            f"a={float(result.alphas[k]):.3g} L2={float(result.l2[k]):.2f}\n"
            f"p({target})={float(result.target_probs[k]):.2f}"
        )
        draw.text((x, y + h + 2), text, fill="black")
    return sheet


@functools.lru_cache(maxsize=32)  # loading the font is most of the cost of a caption
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1, or no FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


PANEL_COLOURS = {"source": (70, 130, 200), "target": (230, 120, 40)}


def probability_panel(
    width: int, rows: list[tuple[str, float, tuple[int, int, int]]], footer: str = ""
) -> np.ndarray:
    """A caption strip ``(h, width, 3)``: one labelled probability bar per row, then a footer line."""
    base, size, line = _panel_base(width, tuple(name for name, _, _ in rows), bool(footer))
    panel = base.copy()  # the labels and empty bars, drawn once for every frame of a morph
    draw = ImageDraw.Draw(panel)
    font = _font(size)
    bar_x0, bar_x1 = int(width * 0.45) + 4, width - 6
    for i, (_, prob, colour) in enumerate(rows):
        y = 4 + i * line
        fill = bar_x0 + int(round((bar_x1 - bar_x0) * min(max(prob, 0.0), 1.0)))
        if fill > bar_x0:
            draw.rectangle((bar_x0, y + 2, fill, y + size + 2), fill=colour)
        draw.text((bar_x0 + 3, y + 1), f"{prob:.2f}", fill=(0, 0, 0), font=font)
    if footer:
        draw.text(
            (4, 4 + len(rows) * line), _fit_text(draw, footer, width - 8, font), fill=(90, 90, 90), font=font
        )
    return np.asarray(panel)


@functools.lru_cache(maxsize=64)
def _panel_base(width: int, names: tuple[str, ...], footer: bool) -> tuple[Image.Image, int, int]:
    """The parts of a :func:`probability_panel` that do not change from frame to frame: the
    background, the row labels and the empty bars; and the font size and line height."""
    size = max(11, min(16, width // 22))
    font = _font(size)
    line = size + 8
    height = line * len(names) + (line if footer else 0) + 6
    height += height % 2
    panel = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(panel)
    label_w = int(width * 0.45)
    bar_x0, bar_x1 = label_w + 4, width - 6
    for i, name in enumerate(names):
        y = 4 + i * line
        draw.text((4, y), _fit_text(draw, name, label_w - 6, font), fill=(20, 20, 20), font=font)
        draw.rectangle((bar_x0, y + 2, bar_x1, y + size + 2), fill=(225, 225, 225))
    return panel, size, line


def annotated_frames(
    result: MorphResult, min_side: int = MIN_VIDEO_SIDE, indices: Sequence[int] | None = None
) -> np.ndarray:
    """The frames enlarged (as for the video), each above a strip with the source and target
    probabilities drawn as bars and the frame's L2 distance from the input.

    ``indices`` selects frames (default: all).  Returns ``(F, H', W', 3)`` uint8 with even
    sides, ready for :func:`write_mp4`.
    """
    n = len(result.frames)
    indices = list(range(n)) if indices is None else [int(k) % n for k in indices]
    frames = upscale(to_uint8(result.frames[indices]), min_side=min_side)
    src, tgt = result.labels[result.source], result.labels[result.target]
    out = []
    for i, k in enumerate(indices):
        rows = [
            (f"source: {src}", float(result.source_probs[k]), PANEL_COLOURS["source"]),
            (f"target: {tgt}", float(result.target_probs[k]), PANEL_COLOURS["target"]),
        ]
        footer = f"frame {k + 1}/{n}  L2 = {float(result.l2[k]):.2f}  top-1: {result.top1[k]}"
        panel = probability_panel(frames.shape[2], rows, footer)
        out.append(np.concatenate([frames[i], panel], axis=0))
    return np.stack(out)


def change_map(result: MorphResult, frame: int = -1, min_side: int = MIN_VIDEO_SIDE) -> np.ndarray:
    """Where the image changed: ``|x_k − x_0|`` (L2 over channels) as a heat map over the grey input.

    The heat is scaled to the largest change of the frame, so the map shows *where*, not how
    much (the frame's L2 says that).  Returns ``(H', W', 3)`` uint8, enlarged like the video.
    """
    import matplotlib

    frames = result.frames.detach().float().cpu()
    x0, xk = frames[0], frames[frame]
    change = (xk - x0).norm(dim=0)
    top = float(change.max())
    heat = (change / top).numpy() if top > 0 else np.zeros(change.shape, dtype=np.float32)
    colours = matplotlib.colormaps["inferno"](heat)[..., :3]
    grey = x0.mean(dim=0).numpy()[..., None]
    weight = np.clip(heat * 1.5, 0.0, 1.0)[..., None]
    blend = (1 - weight) * (0.25 + 0.5 * grey) + weight * colours
    image = (np.clip(blend, 0, 1) * 255).round().astype(np.uint8)
    return upscale(image[None], min_side=min_side)[0]


def title_strip(width: int, title: str) -> np.ndarray:
    """A white strip ``(h, width, 3)`` with ``title`` on it."""
    size = max(11, min(16, width // 20))
    font = _font(size)
    height = size + 10
    height += height % 2
    strip = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(strip)
    text = _fit_text(draw, title, width - 8, font)
    # centred: a video player's own label sits over the top-left corner
    draw.text(((width - draw.textlength(text, font=font)) / 2, 4), text, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def message_tile(height: int, width: int, text: str) -> np.ndarray:
    """A grey tile ``(height, width, 3)`` with ``text`` wrapped on it (e.g. "budget not reachable")."""
    size = max(11, min(15, width // 24))
    font = _font(size)
    tile = Image.new("RGB", (width, height), (200, 200, 200))
    draw = ImageDraw.Draw(tile)
    lines, current = [], ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) > width - 12 and current:
            lines.append(current)
            current = word
        else:
            current = trial
    lines.append(current)
    for i, text_line in enumerate(lines):
        draw.text((6, 6 + i * (size + 4)), text_line, fill=(40, 40, 40), font=font)
    return np.asarray(tile)


def side_by_side(
    videos: list[np.ndarray], titles: list[str], gap: int = 6, columns: int | None = None
) -> np.ndarray:
    """Tile videos ``(F, H_i, W_i, 3)`` in rows of ``columns`` (default: one row), each under its
    title; shorter and narrower ones are padded.

    Every video must have the same number of frames.  Returns ``(F, H, W, 3)`` with even sides.
    """
    if len(videos) != len(titles) or not videos:
        raise ValueError("side_by_side needs one title per video, and at least one video")
    n = len(videos[0])
    if any(len(v) != n for v in videos):
        raise ValueError(f"every video needs the same number of frames, got {[len(v) for v in videos]}")
    tiles = []
    for video, title in zip(videos, titles, strict=True):
        strip = title_strip(video.shape[2], title)
        tiles.append(np.concatenate([np.broadcast_to(strip, (n, *strip.shape)), video], axis=1))
    columns = columns or len(tiles)
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    width = max(sum(t.shape[2] for t in row) + gap * (len(row) - 1) for row in rows)
    lines = []
    for r, row in enumerate(rows):
        height = max(t.shape[1] for t in row)
        parts = []
        for i, tile in enumerate(row):
            parts.append(
                np.pad(tile, ((0, 0), (0, height - tile.shape[1]), (0, 0), (0, 0)), constant_values=255)
            )
            if i < len(row) - 1:
                parts.append(np.full((n, height, gap, 3), 255, dtype=np.uint8))
        line = np.concatenate(parts, axis=2)
        lines.append(np.pad(line, ((0, 0), (0, 0), (0, width - line.shape[2]), (0, 0)), constant_values=255))
        if r < len(rows) - 1:
            lines.append(np.full((n, gap, width, 3), 255, dtype=np.uint8))
    out = np.concatenate(lines, axis=1)
    pad_h, pad_w = out.shape[1] % 2, out.shape[2] % 2
    if pad_h or pad_w:
        out = np.pad(out, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=255)
    return out


def probability_plot(result: MorphResult, path: str | Path) -> Path:
    """Plot source and target probability against amplification (and L2 on a second axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = result.alphas.numpy()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    source, target = (tuple(c / 255 for c in PANEL_COLOURS[k]) for k in ("source", "target"))  # as on frames
    ax.plot(
        alphas,
        result.target_probs.numpy(),
        "o-",
        color=target,
        label=f"target: {result.labels[result.target]}",
    )
    ax.plot(
        alphas,
        result.source_probs.numpy(),
        "s-",
        color=source,
        label=f"source: {result.labels[result.source]}",
    )
    ax.set_xlabel("amplification α")
    ax.set_ylabel("probability")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.plot(alphas, result.l2.numpy(), ":", color="grey", label="L2 from input")
    twin.set_ylabel("L2 from input", color="grey")
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8)
    p = result.params
    ax.set_title(f"{p.get('family')} / {p.get('regime')}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def save_result(
    result: MorphResult,
    out_dir: str | Path,
    fps: float = 8.0,
    loop: bool = True,
    video: bool = True,
) -> dict[str, Path]:
    """Write every rendering of ``result`` into ``out_dir`` (created if needed).

    Returns
    -------
    dict
        Paths by kind: ``frames`` (the directory of PNGs), ``gif``, ``mp4``, ``sheet``,
        ``plot``, ``summary``.
    """
    out = Path(out_dir)
    frame_dir = out / "frames"
    frame_dir.mkdir(parents=True, exist_ok=True)
    raw = to_uint8(result.frames)
    for k, frame in enumerate(raw):
        Image.fromarray(frame).save(frame_dir / f"frame_{k:03d}.png")
    shown = annotated_frames(result)  # as the app shows them: probabilities and L2 under every frame
    paths: dict[str, Path] = {"frames": frame_dir}
    paths["gif"] = write_gif(shown, out / "morph.gif", fps=fps, loop=loop)
    if video:
        paths["mp4"] = write_mp4(shown, out / "morph.mp4", fps=fps, loop=loop)
    sheet = contact_sheet(result)
    paths["sheet"] = out / "contact_sheet.png"
    sheet.save(paths["sheet"])
    paths["plot"] = probability_plot(result, out / "probabilities.png")
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(result.summary(), indent=2, default=str))
    return paths
