"""Frames to label: pick frames of a video and write them as PNGs for a labeling tool.

Images are named `img{frame:05d}.png` after their frame index in the video, as DeepLabCut
names extracted frames, so that labels made on them trace back to the video frame. Methods:

- `uniform` spreads the frames evenly over the video.
- `kmeans` picks frames that look different from each other, as LEAP and DeepLabCut do: an
  evenly spaced subsample of at most `KMeansConfig.max_candidates` frames is decoded once, as a
  stream, and shrunk to small greyscale images inside ffmpeg; those vectors (optionally reduced
  by PCA) are clustered into `n_frames` clusters with seeded k-means, and from each cluster
  the frame nearest its centre is taken. Memory is bounded by the candidate cap, whatever the
  video's length, and the same seed gives the same frames.

To add a method, add it to `Method`, to `pick_frames`, to the config schema's enum, and a test
in tests/io/test_frames.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import ffmpeg
import numpy as np
import pandas as pd
from PIL import Image

from posecore.io import ffmpeg_tools
from posecore.io.atomic import atomic_path
from posecore.io.video import VideoError, VideoInfo, probe, read_frame_array

Method = Literal["uniform", "kmeans"]


@dataclass(frozen=True)
class KMeansConfig:
    """How `kmeans` frame extraction works.

    Attributes:
        seed: seed of k-means (and of PCA's randomised solver); the same seed gives the same frames.
        max_candidates: at most this many evenly spaced frames are clustered; bounds memory and
            time on long videos (each candidate is one thumbnail of `downsample_width` columns).
        downsample_width: width in pixels of the greyscale thumbnails that are clustered (the
            height keeps the aspect ratio); DeepLabCut uses 30.
        pca_components: reduce the thumbnails to this many principal components before k-means,
            as LEAP does; 0 clusters the thumbnails themselves, as DeepLabCut does.
    """

    seed: int = 0
    max_candidates: int = 2000
    downsample_width: int = 32
    pca_components: int = 0

    def __post_init__(self) -> None:
        if self.max_candidates < 1:
            raise ValueError(f"max_candidates must be at least 1, got {self.max_candidates}")
        if self.downsample_width < 2:
            raise ValueError(f"downsample_width must be at least 2, got {self.downsample_width}")
        if self.pca_components < 0:
            raise ValueError(f"pca_components must be >= 0, got {self.pca_components}")


def image_name(frame: int, n_video_frames: int = 0) -> str:
    """The PNG name of a frame: `img{frame:05d}.png`, wider when the video has 100000 frames or more.

    All names of one video have the same width, so plain and natural sorting agree.
    """
    width = max(5, len(str(max(n_video_frames - 1, 0))))
    return f"img{frame:0{width}d}.png"


def uniform_frames(n_video_frames: int, n_frames: int) -> np.ndarray:
    """Sorted, distinct int64 frame indices: the centres of `n_frames` equal parts of the video."""
    n = min(n_frames, n_video_frames)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    # Centres of n equal parts of the video, so neither end is over-sampled.
    return np.unique(((np.arange(n) + 0.5) * n_video_frames / n).astype(np.int64))


def candidate_frames(n_video_frames: int, max_candidates: int) -> np.ndarray:
    """The frames that k-means chooses from: every `step`-th frame, at most `max_candidates` of them.

    Args:
        n_video_frames: frames in the video.
        max_candidates: the cap.

    Returns:
        int64 (C,) frame indices 0, step, 2*step, ... with C <= max_candidates, step = ceil(N / cap).
    """
    step = max(1, -(-n_video_frames // max_candidates))  # ceil division
    return np.arange(0, n_video_frames, step, dtype=np.int64)


def thumbnail_size(info: VideoInfo, width: int) -> tuple[int, int]:
    """(width, height) of the thumbnails: `width` wide (at most the video's), aspect ratio kept."""
    w = min(width, info.width)
    return w, max(1, round(w * info.height / info.width))


def frame_thumbnails(video: str | Path, candidates: np.ndarray, width: int, *, info: VideoInfo) -> np.ndarray:
    """Small greyscale thumbnails of evenly spaced frames, from one streaming decode in ffmpeg.

    ffmpeg decodes the video once, from the first frame, keeps every `step`-th frame with its
    `select` filter and shrinks it with its `scale` filter (area averaging), so only the
    thumbnails cross the pipe and only they are held in memory.

    Args:
        video: the video file.
        candidates: int64 (C,) frame indices from `candidate_frames` (0, step, 2*step, ...).
        width: thumbnail width in pixels (see `thumbnail_size`).
        info: the video's probe.

    Returns:
        uint8 (C, h, w) greyscale thumbnails, row-major (y, x), in the order of `candidates`.

    Raises:
        ValueError: `candidates` is not an evenly spaced run from frame 0.
        VideoError: the decode ends before the last candidate (names the file and the frame).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    step = int(candidates[1] - candidates[0]) if len(candidates) > 1 else 1
    if len(candidates) and (candidates[0] != 0 or np.any(np.diff(candidates) != step)):
        raise ValueError("candidates must be 0, step, 2*step, ... as candidate_frames gives them")
    w, h = thumbnail_size(info, width)
    out = np.empty((len(candidates), h, w), dtype=np.uint8)  # (C, h, w)
    if not len(candidates):
        return out
    stream = ffmpeg.input(str(video), nostdin=None)[str(info.stream_index)]
    stream = stream.filter("select", f"not(mod(n,{step}))").filter("scale", w, h, flags="area")
    args = stream.output(
        "pipe:", format="rawvideo", pix_fmt="gray", vframes=len(candidates), **ffmpeg_tools.passthrough_timing()
    ).compile(cmd=ffmpeg_tools.ffmpeg_executable())
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg never blocks on it
        proc = subprocess.Popen([args[0], "-loglevel", "error", *args[1:]], stdout=subprocess.PIPE, stderr=log)
        try:
            got = 0
            while got < len(candidates) and len(raw := proc.stdout.read(w * h)) == w * h:
                out[got] = np.frombuffer(raw, dtype=np.uint8).reshape(h, w)
                got += 1
        finally:
            proc.stdout.close()
            proc.wait()
        if got < len(candidates):
            log.seek(0)
            reason = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise VideoError(
                video,
                f"decoding stopped after {got} of {len(candidates)} sampled frames (ffmpeg: {reason[0]})",
                where=f"frame {int(candidates[got])}",
            )
    return out


def kmeans_frames(features: np.ndarray, n_frames: int, config: KMeansConfig = KMeansConfig()) -> np.ndarray:
    """Positions of `n_frames` diverse rows of `features`: per k-means cluster, the row nearest its centre.

    Args:
        features: float (C, D) one vector per candidate frame.
        n_frames: clusters, hence rows picked (at most C).
        config: seed and PCA settings.

    Returns:
        int64 (min(n_frames, C),) sorted, distinct row positions into `features`.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)  # (C, D)
    k = min(n_frames, len(x))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k == len(x):
        return np.arange(k, dtype=np.int64)
    if config.pca_components:
        n_components = min(config.pca_components, *x.shape)
        x = PCA(n_components=n_components, random_state=config.seed).fit_transform(x)  # (C, n_components)
    model = KMeans(n_clusters=k, random_state=config.seed, n_init=4).fit(x)
    distances = model.transform(x)  # (C, k) distance of every candidate to every centre
    picked: list[int] = []
    taken = np.zeros(len(x), dtype=bool)
    for c in range(k):
        members = np.flatnonzero((model.labels_ == c) & ~taken)
        pool = members if len(members) else np.flatnonzero(~taken)  # an empty cluster takes the nearest free frame
        best = int(pool[np.argmin(distances[pool, c])])
        taken[best] = True
        picked.append(best)
    return np.sort(np.asarray(picked, dtype=np.int64))


def pick_frames(
    n_video_frames: int,
    n_frames: int,
    method: Method = "uniform",
    *,
    video: str | Path | None = None,
    info: VideoInfo | None = None,
    kmeans: KMeansConfig = KMeansConfig(),
) -> np.ndarray:
    """Sorted, distinct frame indices to label: at most `n_frames` of `n_video_frames`.

    Args:
        n_video_frames: frames in the video.
        n_frames: frames wanted.
        method: "uniform" or "kmeans" (which needs `video`).
        video: the video file, for "kmeans".
        info: the video's probe, if known.
        kmeans: settings of "kmeans".

    Returns:
        int64 (n,) frame indices, ascending.

    Raises:
        ValueError: an unknown method, or "kmeans" without a video.
    """
    if method == "uniform":
        return uniform_frames(n_video_frames, n_frames)
    if method != "kmeans":
        raise ValueError(f"unknown frame extraction method {method!r}; known: {', '.join(get_args(Method))}")
    if video is None:
        raise ValueError("method 'kmeans' needs the video to look at its frames")
    info = info or probe(video)
    candidates = candidate_frames(n_video_frames, kmeans.max_candidates)
    thumbs = frame_thumbnails(video, candidates, kmeans.downsample_width, info=info)  # (C, h, w)
    features = thumbs.reshape(len(thumbs), -1).astype(np.float32) / 255.0  # (C, h*w)
    return candidates[kmeans_frames(features, n_frames, kmeans)]


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    table: str | Path,
    *,
    n_frames: int,
    method: Method = "uniform",
    kmeans: KMeansConfig = KMeansConfig(),
    info: VideoInfo | None = None,
) -> pd.DataFrame:
    """Write the picked frames of `video` as PNGs into `out_dir` and list them in `table` (TSV).

    The folder is filled under a temporary name and renamed when complete. The table has the
    columns frame, time_s, image and video.
    """
    info = info or probe(video)
    indices = pick_frames(info.n_frames, n_frames, method, video=video, info=info, kmeans=kmeans)
    names = [image_name(int(i), info.n_frames) for i in indices]
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write_pngs(video, indices, names, staging, info=info)
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    listing = pd.DataFrame(
        {"frame": indices, "time_s": [info.time_of(int(i)) for i in indices], "image": names, "video": str(video)}
    )
    with atomic_path(table) as tmp:
        listing.to_csv(tmp, sep="\t", index=False)
    return listing


def write_pngs(
    video: str | Path, indices: np.ndarray, names: list[str], folder: str | Path, *, info: VideoInfo
) -> None:
    """Decode frames `indices` (N,) (sorted) exactly as a sequential decode gives them; write them as `folder/<name>`.

    Frames are decoded a few at a time, so memory stays small however large the frames are.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chunk = 32
    for start in range(0, len(indices), chunk):
        images = read_frame_array(video, indices[start : start + chunk], info=info)  # (n, H, W, 3)
        for name, image in zip(names[start : start + chunk], images, strict=True):
            Image.fromarray(image).save(folder / name)
