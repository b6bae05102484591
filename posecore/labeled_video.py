"""Labeled videos: a video's keypoints and skeleton drawn over its frames, as an H.264 MP4.

What DeepLabCut's `create_labeled_video` makes, the first thing users check and show. Each
frame of a range is read exactly (`posecore.io.video`), its points are drawn as discs in their
keypoint's colour (the QC report's colours), as opaque as their score (clipped to [0, 1]; a
point scoring below `min_score` is not drawn), joined by the skeleton's edges (as opaque as the
weaker end), optionally with each point's trail over the frames before; the frames are piped
into ffmpeg and encoded as H.264 yuv420p (`posecore.io.ffmpeg_tools.h264_command`).

Everything streams: frames are decoded, drawn and encoded a batch at a time, and the points
come from the trajectory file in chunks of frames (`posecore.io.trajectory_arrays`), so memory
stays flat however long the video. The MP4 plays at the video's frame rate (for a
variable-frame-rate video, its mean rate), with one output frame per input frame.

Before a frame is drawn, the trajectories are checked against the video (`check_match`): a
file made from another video (other frame count, frame size or frame rate, or another file
named in its provenance) is refused with both files named.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.io.ffmpeg_tools import h264_command, pipe_frames
from posecore.io.trajectories import read_provenance
from posecore.io.trajectory_arrays import TrajectorySummary, iter_points, summarize, trajectory_files
from posecore.io.video import VideoInfo, probe, read_frames
from posecore.qc.clips import keypoint_colors

logger = logging.getLogger(__name__)

Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
PRESETS = Preset.__args__


@dataclass(frozen=True)
class LabelStyle:
    """How points are drawn and the video encoded.

    Attributes:
        min_score: points scoring below this are not drawn (nor their edges and trail).
        trail: frames of trail drawn behind each point (0: none), fading with age.
        radius: disc radius in pixels (rounded to whole pixels); 0 picks 0.6% of the frame's
            diagonal, at least 2.
        show_frame: write the frame index and time in the top-left corner.
        crf: x264's constant rate factor (lower: better and bigger; 23 is x264's default).
        preset: x264's speed preset.
    """

    min_score: float = 0.1
    trail: int = 0
    radius: float = 0.0
    show_frame: bool = True
    crf: int = 23
    preset: Preset = "veryfast"

    def __post_init__(self) -> None:
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.trail < 0 or self.radius < 0:
            raise ValueError(f"trail and radius must be >= 0, got {self.trail} and {self.radius}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")


@dataclass(frozen=True)
class LabeledVideo:
    """What `label_video` wrote.

    Attributes:
        path: the MP4.
        frames: [start, stop) of the video that it shows.
        keypoint_names: the keypoints, in colour order.
    """

    path: Path
    frames: tuple[int, int]
    keypoint_names: tuple[str, ...]


def check_match(summary: TrajectorySummary, info: VideoInfo) -> None:
    """Refuse trajectories that were not made from this video.

    Checks, each naming both files: the frames lie inside the video; the frame count and
    size recorded in the file's provenance (when it has them) are the video's; each frame's
    time is the video's (the same frame rate); no point lies outside the frame; and the video
    the provenance names is this one (the same file name or the same size in bytes).

    Raises:
        InputError: naming the trajectory file, the video and what differs.
    """
    traj, video = summary.path, info.path
    if summary.n_rows == 0:
        raise InputError(traj, "the trajectory table has no rows")
    other = "these are the trajectories of another video"
    if summary.last_frame >= info.n_frames or summary.first_frame < 0:
        raise InputError(
            traj,
            f"holds frames {summary.first_frame}..{summary.last_frame}, but {video} has {info.n_frames} frames "
            f"(0..{info.n_frames - 1}): {other}",
        )
    try:
        provenance = read_provenance(traj)
    except InputError:
        provenance = {}  # a table written by other means: the checks below still hold
    made_from = provenance.get("video_path", "another video")
    recorded = (provenance.get("video_n_frames"), provenance.get("video_width"), provenance.get("video_height"))
    if None not in recorded and tuple(recorded) != (info.n_frames, info.width, info.height):
        n, w, h = recorded
        raise InputError(
            traj,
            f"was predicted on {made_from}, {n} frames of {w}x{h}; {video} has {info.n_frames} frames of "
            f"{info.width}x{info.height}: {other}",
        )
    frames = summary.time_samples[:, 0].astype(np.int64)  # (S,)
    expected = np.asarray([info.time_of(int(f)) for f in frames], dtype=np.float64).reshape(-1)  # (S,)
    off = np.abs(summary.time_samples[:, 1] - expected)
    if len(off) and off.max() > 0.25 / info.fps:
        worst = int(np.argmax(off))
        raise InputError(
            traj,
            f"frame {frames[worst]} is at {summary.time_samples[worst, 1]:.4f} s in the trajectories but at "
            f"{expected[worst]:.4f} s in {video} ({info.fps:.3f} frames/s): {other}",
        )
    for axis, (low, high), extent, word in (
        ("x", summary.x_range, info.width, "wide"),
        ("y", summary.y_range, info.height, "high"),
    ):
        margin = max(2.0, 0.01 * extent)  # subpixel refinement may step a little past the border pixel's centre
        if high > extent - 0.5 + margin or low < -0.5 - margin:
            reach = high if high > extent - 0.5 + margin else low
            raise InputError(traj, f"points reach {axis} = {reach:.1f} px, but {video} is {extent} px {word}: {other}")
    if provenance:
        size = Path(video).stat().st_size
        same_name = Path(made_from).name == Path(video).name
        same_size = provenance.get("video_size_bytes") == size
        if not same_name and not same_size:
            raise InputError(
                traj,
                f"was predicted on {made_from} ({provenance.get('video_size_bytes')} bytes); {video} is another "
                f"file ({size} bytes): {other}",
            )
        if not same_size:
            logger.warning("%s: was predicted on %s of another size; %s was changed since", traj, made_from, video)


def skeleton_indices(edges: Sequence[Sequence[str | int]], names: Sequence[str], where: str | Path) -> np.ndarray:
    """int64 (E, 2) edges as keypoint indices, from pairs of names or of indices.

    Raises:
        InputError: an edge names a keypoint that is not in `names`, or an index out of range.
    """
    rows = []
    for edge in edges:
        pair = []
        for end in edge:
            if isinstance(end, str):
                if end not in names:
                    raise InputError(where, f"skeleton edge {tuple(edge)} names {end!r}, not one of {list(names)}")
                pair.append(list(names).index(end))
            elif not 0 <= int(end) < len(names):
                raise InputError(where, f"skeleton edge {tuple(edge)} has no keypoint {end} of {len(names)}")
            else:
                pair.append(int(end))
        rows.append(pair)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class _Palette:
    """Per-frame drawing constants: keypoint colours, skeleton edges, sizes, the font."""

    colors: np.ndarray  # uint8 (K, 3)
    edges: np.ndarray  # int64 (E, 2)
    radius: int
    line_width: int
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont


def _alpha(score: np.ndarray, min_score: float) -> np.ndarray:
    """Opacity 0..255, int (...), of points with these scores (...); 0 below `min_score` or NaN."""
    shown = np.nan_to_num(score, nan=-1.0) >= min_score
    return np.where(shown, np.round(255 * np.clip(np.nan_to_num(score), 0.0, 1.0)), 0).astype(np.int64)


def draw_frame(image: np.ndarray, history: np.ndarray, palette: _Palette, style: LabelStyle, text: str) -> np.ndarray:
    """One frame with its points, skeleton and trails drawn.

    Args:
        image: uint8 (H, W, 3) RGB frame.
        history: float32 (T, I, K, 3) (x, y, score) of this frame's points, last, after the
            T - 1 frames before it (their trail); T = 1 without trails.
        palette: colours, edges and sizes.
        style: the drawing options.
        text: written in the top-left corner ("" for none).

    Returns:
        uint8 (H, W, 3) RGB.
    """
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture, "RGBA")  # shapes with an alpha blend into the RGB frame
    visible = np.isfinite(history[..., :2]).all(axis=-1)  # (T, I, K)
    alpha = np.where(visible, _alpha(history[..., 2], style.min_score), 0)  # (T, I, K)
    n_steps = len(history)
    for step in range(1, n_steps):  # trails, oldest first, fainter with age
        fade = step / n_steps
        for i, k in np.argwhere((alpha[step - 1] > 0) & (alpha[step] > 0)):
            a = int(fade * min(alpha[step - 1, i, k], alpha[step, i, k]))
            line = [tuple(history[step - 1, i, k, :2].tolist()), tuple(history[step, i, k, :2].tolist())]
            draw.line(line, fill=(*palette.colors[k].tolist(), a), width=palette.line_width)
    now, alpha_now = history[-1], alpha[-1]  # (I, K, 3), (I, K)
    for i in range(now.shape[0]):
        for a_k, b_k in palette.edges.tolist():
            a = int(min(alpha_now[i, a_k], alpha_now[i, b_k]))
            if a > 0:
                color = (palette.colors[a_k].astype(np.int64) + palette.colors[b_k]) // 2
                line = [tuple(now[i, a_k, :2].tolist()), tuple(now[i, b_k, :2].tolist())]
                draw.line(line, fill=(*color.tolist(), a), width=palette.line_width)
    r = palette.radius
    for i, k in np.argwhere(alpha_now > 0):
        # Centred on the nearest pixel (a disc of whole pixels is symmetric about a pixel centre only).
        x, y = np.round(now[i, k, :2]).tolist()
        a = int(alpha_now[i, k])
        draw.ellipse([(x - r, y - r), (x + r, y + r)], fill=(*palette.colors[k].tolist(), a), outline=(0, 0, 0, a))
    if text:
        draw.text((4, 3), text, fill=(255, 255, 255, 255), font=palette.font, stroke_width=1, stroke_fill=(0, 0, 0))
    return np.asarray(picture)


class _PointCursor:
    """The points of consecutive frames, pulled in order from `iter_points`'s chunks."""

    def __init__(self, chunks: Iterator[tuple[int, np.ndarray]]) -> None:
        self._chunks = chunks
        self._first, self._points = 0, np.empty((0,))

    def at(self, frame: int) -> np.ndarray:
        """float32 (I, K, 3) points of `frame`; frames must be asked for in ascending order."""
        while frame >= self._first + len(self._points):
            self._first, self._points = next(self._chunks)
        return self._points[frame - self._first]


def label_video(
    video: str | Path,
    trajectories: str | Path,
    out: str | Path,
    *,
    style: LabelStyle = LabelStyle(),
    skeleton: Sequence[Sequence[str | int]] = (),
    keypoint_names: Sequence[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    info: VideoInfo | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> LabeledVideo:
    """Draw one video's trajectories over frames [start, stop) of it and write an H.264 MP4, atomically.

    Args:
        video: the video file.
        trajectories: its trajectory Parquet file (frame-major, as posecore writes them), or
            a folder holding it (the archive's video=<name> folder).
        out: the MP4 to write.
        style: how points are drawn and the video encoded.
        skeleton: edges as pairs of keypoint names (the config's) or indices into
            `keypoint_names` (a model's).
        keypoint_names: the keypoints in colour order (the model's or the config's); default:
            the trajectory file's order.
        start: first frame.
        stop: one past the last frame; default: the end of the video.
        info: the video's probe, if already known.
        threads: x264 threads; None lets it choose.
        progress: show a progress bar (frames per second) on stderr.

    Returns:
        What was written.

    Raises:
        InputError: the trajectories do not belong to the video (`check_match`), hold a
            keypoint not in `keypoint_names`, the skeleton names an unknown keypoint, or the
            frame range is not inside the video.
        VideoError: the video cannot be decoded.
        RuntimeError: ffmpeg failed to encode, with its message.
    """
    info = info or probe(video)
    files, _ = trajectory_files(trajectories)
    if len(files) > 1:
        raise InputError(trajectories, f"holds {len(files)} trajectory files; give one of them")
    summary = summarize(files[0])
    check_match(summary, info)
    names = tuple(keypoint_names) if keypoint_names is not None else summary.keypoint_names
    unknown = [name for name in summary.keypoint_names if name not in names]
    if unknown:
        raise InputError(trajectories, f"keypoint {unknown[0]!r} is not one of {list(names)}")
    edges = skeleton_indices(skeleton, names, trajectories)
    stop = info.n_frames if stop is None else stop
    if not 0 <= start < stop <= info.n_frames:
        raise InputError(video, f"frames [{start}, {stop}) are not inside [0, {info.n_frames})")
    # Points come out of the file in its keypoint order; `kept` of `names` are at `source` there.
    kept = [k for k, name in enumerate(names) if name in summary.keypoint_names]
    source = [summary.keypoint_names.index(names[k]) for k in kept]
    radius = max(1, round(style.radius or max(2.0, 0.006 * math.hypot(info.width, info.height))))
    palette = _Palette(
        colors=np.asarray(keypoint_colors(len(names)), dtype=np.uint8).reshape(-1, 3),
        edges=edges,
        radius=radius,
        line_width=max(1, round(radius / 2)),
        font=ImageFont.load_default(size=max(10, info.height // 30)),
    )
    first = max(0, start - style.trail)
    cursor = _PointCursor(iter_points(summary, first, stop))

    def in_names_order(points: np.ndarray) -> np.ndarray:
        """(I, K', 3) points in the file's keypoint order -> (I, K, 3) in `names` order, NaN where absent."""
        ordered = np.full((points.shape[0], len(names), 3), np.nan, dtype=np.float32)
        ordered[:, kept] = points[:, source]
        return ordered

    history: deque[np.ndarray] = deque(maxlen=style.trail + 1)
    for frame in range(first, start):
        history.append(in_names_order(cursor.at(frame)))

    def drawn() -> Iterator[np.ndarray]:
        with tqdm(total=stop - start, desc=f"{Path(video).name} [{start}, {stop})", unit="frame",
                  disable=not progress) as bar:  # fmt: skip
            for batch in read_frames(video, start, stop, info=info, batch_size=16):
                for index, time, image in zip(batch.indices.tolist(), batch.times, batch.images, strict=True):
                    history.append(in_names_order(cursor.at(index)))
                    text = f"frame {index}  {time:.2f} s" if style.show_frame else ""
                    yield draw_frame(image, np.stack(history), palette, style, text)
                bar.update(len(batch.indices))

    with atomic_path(out) as tmp:
        command = h264_command(tmp, (info.width, info.height), info.fps, crf=style.crf, preset=style.preset,
                               threads=threads)  # fmt: skip
        pipe_frames(command, drawn(), f"writing {out}")
    return LabeledVideo(path=Path(out), frames=(start, stop), keypoint_names=names)
