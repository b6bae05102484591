"""Frames to label: pick frames of a video and write them as PNGs for a labeling tool.

Images are named `img{frame:05d}.png` after their frame index in the video, as DeepLabCut
names extracted frames, so that labels made on them trace back to the video frame. Methods:
`uniform` spreads the frames evenly over the video. To add a method, add it to `Method`,
to `pick_frames`, to the config schema's enum, and a test in tests/io/test_frames.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image

from posecore.io.atomic import atomic_path
from posecore.io.video import VideoInfo, probe, read_frame_array

Method = Literal["uniform"]


def pick_frames(n_video_frames: int, n_frames: int, method: Method = "uniform") -> np.ndarray:
    """Sorted, distinct frame indices to label: at most `n_frames` of `n_video_frames`."""
    if method != "uniform":
        raise ValueError(f"unknown frame extraction method {method!r}; known: uniform")
    n = min(n_frames, n_video_frames)
    # Centres of n equal parts of the video, so neither end is over-sampled.
    return np.unique(((np.arange(n) + 0.5) * n_video_frames / n).astype(np.int64))


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    table: str | Path,
    *,
    n_frames: int,
    method: Method = "uniform",
    info: VideoInfo | None = None,
) -> pd.DataFrame:
    """Write the picked frames of `video` as PNGs into `out_dir` and list them in `table` (TSV).

    The folder is filled under a temporary name and renamed when complete.
    """
    info = info or probe(video)
    indices = pick_frames(info.n_frames, n_frames, method)
    images = read_frame_array(video, indices, info=info)  # (N, H, W, 3)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    names = [f"img{index:05d}.png" for index in indices]
    for name, image in zip(names, images, strict=True):
        Image.fromarray(image).save(staging / name)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    listing = pd.DataFrame(
        {"frame": indices, "time_s": [info.time_of(int(i)) for i in indices], "image": names, "video": str(video)}
    )
    with atomic_path(table) as tmp:
        listing.to_csv(tmp, sep="\t", index=False)
    return listing
