"""Predicted points drawn on video frames: the report's frame panels and its short labeled MP4 clips.

Frames are read exactly (`posecore.io.video`), so a point is drawn on the very frame it was
predicted on. Coordinates follow the contract (x the column, y the row, the centre of the
top-left pixel at (0, 0)); a frame shrunk for a clip maps a point through the same convention.
Points at or above the score threshold are filled discs in their keypoint's colour, points
below it are crosses, and in the panels a point that jumped from the previous frame gets a red
ring. Clips are H.264 yuv420p MP4 (what browsers play), made by piping frames into ffmpeg.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from posecore.io.ffmpeg_tools import h264_command, pipe_frames
from posecore.io.video import VideoInfo, read_frames
from posecore.qc import plots

RGB = tuple[int, int, int]


def keypoint_colors(n: int) -> list[RGB]:
    """The report's `n` keypoint colours (as in its plots) as 8-bit RGB."""
    return [(round(255 * r), round(255 * g), round(255 * b)) for r, g, b, _ in plots._colors(n)]


def clip_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The (width, height) of a clip: at most `max_width` wide, never enlarged, both even (yuv420p)."""
    scale = min(1.0, max_width / width)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def draw_points(
    image: np.ndarray,
    xy: np.ndarray,
    low: np.ndarray,
    colors: Sequence[RGB],
    size: tuple[int, int],
    text: str,
    jump: np.ndarray | None = None,
) -> np.ndarray:
    """One frame, resized to `size`, with its points drawn and `text` in the top-left corner.

    Args:
        image: uint8 (H, W, 3) RGB frame at its original size.
        xy: (I, K, 2) points (x, y) in pixels of the original frame; NaN points are not drawn.
        low: bool (I, K), points below the score threshold (drawn as crosses, others as discs).
        colors: K RGB colours, one per keypoint.
        size: (width, height) of the result.
        text: drawn in the top-left corner (the frame's index and time).
        jump: bool (I, K), points that jumped since the previous frame (a red ring), if given.

    Returns:
        uint8 (size[1], size[0], 3) RGB.
    """
    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    if (width, height) != size:
        shrink = size[0] < width
        picture = picture.resize(size, Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(picture)
    sx, sy = size[0] / width, size[1] / height
    radius = max(2.0, 0.008 * math.hypot(*size))
    for instance, k in np.argwhere(np.isfinite(xy).all(axis=-1)):
        # pixel-centre convention: the centre of original pixel x is at (x + 0.5) * sx - 0.5
        u, v = (xy[instance, k, 0] + 0.5) * sx - 0.5, (xy[instance, k, 1] + 0.5) * sy - 0.5
        if low[instance, k]:
            for line_width, color in ((3, (255, 255, 255)), (1, colors[k])):
                draw.line([(u - radius, v - radius), (u + radius, v + radius)], fill=color, width=line_width)
                draw.line([(u - radius, v + radius), (u + radius, v - radius)], fill=color, width=line_width)
        else:
            draw.ellipse([(u - radius, v - radius), (u + radius, v + radius)], fill=colors[k], outline=(0, 0, 0))
        if jump is not None and jump[instance, k]:
            ring = 2.2 * radius
            draw.ellipse([(u - ring, v - ring), (u + ring, v + ring)], outline=(255, 0, 0), width=2)
    draw.text((3, 2), text, fill=(255, 255, 255), font=_font(size[1] // 16), stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


def _font(pixels: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in font at about `pixels` high (at least 9)."""
    return ImageFont.load_default(size=max(9, pixels))


def panel_grid(panels: Sequence[np.ndarray], keypoints: Sequence[str], title: str, n_columns: int = 3) -> bytes:
    """Labeled frames side by side under a title, with a legend of the keypoint colours, as a PNG.

    The image is stored with a 256-colour palette that keeps the keypoint colours exactly: video
    frames are noisy and would make a full-colour PNG several times larger.

    Args:
        panels: uint8 (h, w, 3) RGB frames of one size, as `draw_points` makes them.
        keypoints: the K keypoint names, in colour order.
        title: one line above the panels.
        n_columns: panels per row.
    """
    h, w = panels[0].shape[:2]
    n_columns = min(n_columns, len(panels))
    n_rows = -(-len(panels) // n_columns)
    gap, font = 4, _font(13)
    legend = [(name, color) for name, color in zip(keypoints, keypoint_colors(len(keypoints)), strict=True)]
    legend_rows = -(-len(legend) // 6)
    top, bottom = 22, 18 * (legend_rows + 1) + 4
    sheet = Image.new("RGB", (n_columns * (w + gap) + gap, top + n_rows * (h + gap) + bottom), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 3), title, fill=(0, 0, 0), font=font)
    for n, panel in enumerate(panels):
        sheet.paste(Image.fromarray(panel), (gap + (n % n_columns) * (w + gap), top + (n // n_columns) * (h + gap)))
    y = top + n_rows * (h + gap) + 2
    column_width = max(1, (sheet.width - gap) // 6)
    for n, (name, color) in enumerate(legend):
        x, row_y = gap + (n % 6) * column_width, y + (n // 6) * 18
        draw.ellipse([(x, row_y + 3), (x + 10, row_y + 13)], fill=color, outline=(0, 0, 0))
        draw.text((x + 14, row_y), name, fill=(0, 0, 0), font=font)
    y += legend_rows * 18
    key = "disc: score at the threshold or above   x: below it   red ring: jump"
    draw.text((gap, y), key, fill=(60, 60, 60), font=font)
    buffer = io.BytesIO()
    _palette_image(sheet, [color for _, color in legend]).save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def _palette_image(image: Image.Image, colors: Sequence[RGB]) -> Image.Image:
    """`image` with a 256-colour palette that holds `colors` (and black, white, red) exactly.

    The rest of the palette is the image's own median-cut palette; pixels map to the nearest
    entry without dithering (which would add noise and defeat PNG's compression).
    """
    reserved = [*colors[:128], (0, 0, 0), (255, 255, 255), (255, 0, 0), (60, 60, 60)]
    n_own = 256 - len(reserved)
    own = image.quantize(n_own, method=Image.Quantize.MEDIANCUT).getpalette()[: 3 * n_own]
    palette = Image.new("P", (1, 1))
    palette.putpalette(own + [0] * (3 * n_own - len(own)) + [value for color in reserved for value in color])
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def encode_clip(frames: Iterable[np.ndarray], size: tuple[int, int], fps: float, crf: int = 28) -> bytes:
    """Encode uint8 (H, W, 3) RGB frames of `size` (width, height) as an H.264 yuv420p MP4.

    The index (moov atom) goes first (faststart), so a browser starts playing at once.

    Raises:
        RuntimeError: ffmpeg failed, with its message.
    """
    with tempfile.TemporaryDirectory(prefix="posecore-clip-") as folder:
        out = Path(folder) / "clip.mp4"
        command = h264_command(out, size, fps, crf=crf, preset="veryfast")
        pipe_frames(command, frames, "encoding a clip")
        return out.read_bytes()


def panel_size(width: int, height: int, panel_width: int = 256) -> tuple[int, int]:
    """The (width, height) of a frame panel: about `panel_width` wide, enlarged at most twice."""
    scale = min(2.0, panel_width / width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_labeled_stretch(
    path: Path,
    info: VideoInfo,
    window: tuple[int, int],
    step: int,
    panels: Sequence[int],
    xy: np.ndarray,
    low: np.ndarray,
    jump: np.ndarray,
    max_width: int,
    label: str,
) -> tuple[bytes, list[np.ndarray]]:
    """Read frames [start, stop) of a video once, exactly, into a labeled clip and labeled frame panels.

    Args:
        path: the video file.
        info: its probe.
        window: [start, stop) frame indices, inside the video.
        step: every `step`-th frame of the window goes into the clip, which plays at fps / step.
        panels: frame indices inside the window to return as panels (`panel_size`), ascending.
        xy: (F, I, K, 2) the video's points (x, y) in pixels, F covering the window (NaN: not drawn).
        low: bool (F, I, K) points below the score threshold (drawn as crosses).
        jump: bool (F, I, K) points that jumped since the previous frame (red rings on the panels).
        max_width: the clip's frames are shrunk to at most this width.
        label: written on every clip frame before the frame index and time.

    Returns:
        The clip (MP4 bytes), and uint8 (h, w, 3) RGB panels in the order of `panels`.

    Raises:
        VideoError: the video cannot be decoded up to the end of the window.
    """
    start, stop = window
    size, panel = clip_size(info.width, info.height, max_width), panel_size(info.width, info.height)
    colors = keypoint_colors(xy.shape[2])
    wanted = set(panels)
    drawn: dict[int, np.ndarray] = {}

    def labeled() -> Iterable[np.ndarray]:
        for batch in read_frames(path, start, stop, info=info, batch_size=16):
            for index, time, image in zip(batch.indices.tolist(), batch.times, batch.images, strict=True):
                if index in wanted:
                    counts = f"{int(low[index].sum())} low, {int(jump[index].sum())} jumps"
                    text = f"frame {index}  {time:.2f} s  {counts}"
                    drawn[index] = draw_points(image, xy[index], low[index], colors, panel, text, jump[index])
                if (index - start) % step == 0:
                    text = f"{label}  frame {index}  {time:.2f} s"
                    yield draw_points(image, xy[index], low[index], colors, size, text)

    clip = encode_clip(labeled(), size, info.fps / step)
    return clip, [drawn[frame] for frame in panels]
