"""Render a morph: frames, looping GIF and MP4, contact sheet, probability plot, JSON summary.

Small images (digits are 28–32 px) are enlarged with nearest-neighbour so that videos and
sheets stay crisp; videos are H.264/yuv420p with even sides (what browsers and
``gr.Video`` play), encoded with the ffmpeg binary that ``imageio-ffmpeg`` ships.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

if TYPE_CHECKING:
    from .morph import MorphResult

MIN_VIDEO_SIDE = 256


def to_uint8(frames: Tensor) -> np.ndarray:
    """``(F, C, H, W)`` floats in ``[0, 1]`` to ``(F, H, W, 3)`` uint8 (grey becomes RGB)."""
    frames = frames.detach().float().cpu().clamp(0, 1)
    if frames.shape[1] == 1:
        frames = frames.expand(-1, 3, -1, -1)
    return (frames * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


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


def write_gif(frames: np.ndarray, path: str | Path, fps: float = 8.0, loop: bool = True) -> Path:
    """Write an animated GIF that loops forever."""
    images = [Image.fromarray(f) for f in (ping_pong(frames) if loop else frames)]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0, optimize=False
    )
    return Path(path)


def write_mp4(frames: np.ndarray, path: str | Path, fps: float = 8.0, loop: bool = True) -> Path:
    """Write an H.264 (yuv420p) MP4; frame sides must be even."""
    import imageio_ffmpeg

    frames = ping_pong(frames) if loop else frames
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"MP4 frames need even sides, got {h}x{w}; pass them through upscale()")
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        output_params=["-movflags", "+faststart"],
        ffmpeg_log_level="error",
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return Path(path)


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


def probability_plot(result: MorphResult, path: str | Path) -> Path:
    """Plot source and target probability against amplification (and L2 on a second axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = result.alphas.numpy()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(alphas, result.target_probs.numpy(), "o-", label=f"target: {result.labels[result.target]}")
    ax.plot(alphas, result.source_probs.numpy(), "s-", label=f"source: {result.labels[result.source]}")
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
    big = upscale(raw)
    paths: dict[str, Path] = {"frames": frame_dir}
    paths["gif"] = write_gif(big, out / "morph.gif", fps=fps, loop=loop)
    if video:
        paths["mp4"] = write_mp4(big, out / "morph.mp4", fps=fps, loop=loop)
    sheet = contact_sheet(result)
    paths["sheet"] = out / "contact_sheet.png"
    sheet.save(paths["sheet"])
    paths["plot"] = probability_plot(result, out / "probabilities.png")
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(result.summary(), indent=2, default=str))
    return paths
