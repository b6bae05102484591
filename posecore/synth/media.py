"""The synthetic archive's video and image files, through ffmpeg-python.

Encoding pipes raw RGB frames into ffmpeg (`posecore.io.ffmpeg_tools.pipe_frames`); decoding
reads them back as rgb24 from one full sequential decode, which is what a labeling tool shows;
PNGs are written losslessly by ffmpeg. ffmpeg's messages go to a temporary file, so a full
stderr pipe can never block it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import ffmpeg
import numpy as np

from posecore.io.atomic import atomic_path
from posecore.io.ffmpeg_tools import h264_command, pipe_frames


def encode_video(frames: Iterable[np.ndarray], path: Path, width: int, height: int, fps: float, crf: int) -> None:
    """Encode uint8 (H, W, 3) RGB frames into an H.264 yuv420p mp4 at `path`, written atomically.

    The index (moov atom) goes at the front of the file (faststart), as a streaming server
    would have it; a truncated copy therefore still opens (see `truncate_video`).
    """
    with atomic_path(path) as tmp:
        command = h264_command(tmp, (width, height), fps, crf=crf, preset="medium")
        pipe_frames(command, frames, f"writing {path}")


def decode_frames(path: str | Path, indices: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frames of an mp4 at sorted `indices`, from one full sequential decode.

    Args:
        path: the video.
        indices: int (N,) sorted frame indices (positions in decode order).
        width: frame width W.
        height: frame height H.

    Returns:
        uint8 (N, H, W, 3) RGB, exactly as ffmpeg decodes them to rgb24.
    """
    size = width * height * 3
    wanted = set(int(i) for i in indices)
    stream = ffmpeg.input(str(path)).output("pipe:", format="rawvideo", pix_fmt="rgb24", vsync="passthrough")
    stream = stream.global_args("-hide_banner", "-loglevel", "error")
    out = []
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(stream.compile(), stdout=subprocess.PIPE, stderr=stderr)
        index = 0
        while len(out) < len(wanted):
            buffer = process.stdout.read(size)
            if len(buffer) < size:
                break
            if index in wanted:
                out.append(np.frombuffer(buffer, np.uint8).reshape(height, width, 3))
            index += 1
        process.stdout.close()
        process.wait()
    if len(out) != len(wanted):
        raise RuntimeError(f"{path}: decoding stopped after {index} frames, before frame {max(wanted)}")
    return np.stack(out) if out else np.zeros((0, height, width, 3), np.uint8)


def write_pngs(images: np.ndarray, paths: tuple[Path, ...]) -> None:
    """Write uint8 (N, H, W, 3) RGB images as 8-bit RGB PNGs, losslessly, through one ffmpeg call."""
    if not paths:
        return
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".png-") as tmp:
        height, width = images.shape[1:3]
        stream = (
            ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}")
            .output(f"{tmp}/%05d.png", format="image2", vcodec="png", pix_fmt="rgb24", start_number=0)
            .global_args("-hide_banner", "-loglevel", "error")
        )
        pipe_frames(stream.compile(), images, f"writing {folder}")
        for i, path in enumerate(paths):
            os.replace(Path(tmp) / f"{i:05d}.png", path)


def truncate_video(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """A corrupt copy of a video for tests: its first `fraction` of bytes.

    The archive's mp4s keep their index at the front, so the copy still opens and promises
    every frame, but its data ends early: decoding it fails part-way.

    Args:
        src: the video.
        dst: where to write the truncated copy.
        fraction: share of the bytes to keep, in (0, 1).

    Returns:
        `dst`.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction ({fraction}) must be in (0, 1)")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = Path(src).read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst
