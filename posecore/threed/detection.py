"""Finding a board in every camera of a rig: from synchronised images or calibration videos.

A rig's calibration input is, per camera, either a list of images (a glob pattern; the k-th
image of every camera shows the board at the same moment, so every camera needs as many
images, matched by their natural sort order: `img2` before `img10`) or one video (all of the
same length, frame k at the same moment). From videos, frames are chosen automatically: the
board is looked for in `max_candidates` evenly spaced frames, and of those where it is seen, at
most `max_frames` are kept that differ most from each other in where the board appears in
each camera (farthest-point sampling, deterministic).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecore.errors import InputError
from posecore.threed.boards import Board, Detection

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CHUNK_FRAMES = 16
"""Video frames decoded at once when looking for the board (bounds memory at 1280 x 1024)."""


@dataclass(frozen=True, eq=False)
class Detections:
    """The board's corners as every camera saw them, frame by frame.

    Attributes:
        cameras: camera names, in the rig's order (C).
        sizes: (width, height) of each camera's images.
        frames: one label per frame (F): the first camera's image file name, or "frame <k>" of a video.
        corners: float64 (C, F, N, 2) pixel (x, y) of each of the board's N corners; NaN where not seen.
        sources: per camera, the files the frames came from (F image files, or the one video).
    """

    cameras: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    frames: tuple[str, ...]
    corners: np.ndarray
    sources: tuple[tuple[str, ...], ...]

    def seen(self, min_corners: int) -> np.ndarray:
        """Bool (C, F): whether each camera saw at least `min_corners` corners in each frame."""
        return np.isfinite(self.corners[..., 0]).sum(axis=-1) >= min_corners

    def select(self, frames: np.ndarray) -> Detections:
        """The detections of some frames only (int indices or a bool mask over F)."""
        index = np.arange(len(self.frames))[frames]
        return Detections(
            self.cameras,
            self.sizes,
            tuple(self.frames[i] for i in index),
            self.corners[:, index],
            self.sources,
        )


def natural_key(path: str | Path) -> list[object]:
    """Sort key that orders embedded numbers by value: `img2` before `img10`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def detect(
    board: Board,
    sources: Mapping[str, Sequence[str | Path] | str | Path],
    *,
    max_frames: int = 100,
    max_candidates: int = 400,
    progress: Callable[[str], None] | None = None,
) -> Detections:
    """Find the board in every camera's images or video.

    Args:
        board: the board.
        sources: per camera, in the rig's order, a list of image files or one video file.
        max_frames: from videos, how many frames to keep at most.
        max_candidates: from videos, how many evenly spaced frames to look at.
        progress: called with a line of text per camera (e.g. `logging.info`).

    Raises:
        InputError: images and videos mixed, unequal numbers of images or frames between cameras,
            an unreadable image, images of one camera of different sizes.
    """
    names = list(sources)
    is_video = {name: isinstance(src, str | Path) for name, src in sources.items()}
    if len(set(is_video.values())) > 1:
        videos = [n for n in names if is_video[n]]
        raise InputError(
            str(sources[videos[0]]),
            f"cameras {videos} are calibrated from videos and {[n for n in names if not is_video[n]]} from images: "
            "give every camera of a rig the same kind, whose frames match one to one",
        )
    if is_video[names[0]]:
        return _detect_videos(board, {n: Path(sources[n]) for n in names}, max_frames, max_candidates, progress)
    return _detect_images(board, {n: [Path(p) for p in sources[n]] for n in names}, progress)


def _detect_images(
    board: Board, images: Mapping[str, list[Path]], progress: Callable[[str], None] | None
) -> Detections:
    import cv2

    counts = {name: len(files) for name, files in images.items()}
    for name, files in images.items():
        if not files:
            raise InputError(name, f"camera {name!r}: no calibration images (its pattern matched no file)")
    if len(set(counts.values())) > 1:
        raise InputError(
            next(iter(images.values()))[0].parent,
            f"mismatched frame counts: the cameras have {counts} calibration images; the k-th image of every "
            "camera must show the board at the same moment, so each needs as many",
        )
    find = board.detector()
    n_frames = next(iter(counts.values()))
    corners = np.full((len(images), n_frames, board.n_corners, 2), np.nan)
    sizes = []
    for c, (name, files) in enumerate(images.items()):
        files = sorted(files, key=natural_key)
        size = None
        for f, path in enumerate(files):
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise InputError(path, f"camera {name!r}: not a readable image")
            this = (grey.shape[1], grey.shape[0])
            if size is not None and this != size:
                raise InputError(path, f"camera {name!r}: image is {this[0]}x{this[1]}, its others {size[0]}x{size[1]}")
            size = this
            _store(corners[c, f], find(grey))
        sizes.append(size)
        if progress:
            progress(f"{name}: board found in {_count(corners[c])} of {n_frames} images")
    frames = tuple(p.name for p in sorted(next(iter(images.values())), key=natural_key))
    sources = tuple(tuple(str(p) for p in sorted(files, key=natural_key)) for files in images.values())
    return Detections(tuple(images), tuple(sizes), frames, corners, sources)


def _detect_videos(
    board: Board,
    videos: Mapping[str, Path],
    max_frames: int,
    max_candidates: int,
    progress: Callable[[str], None] | None,
) -> Detections:
    from posecore.io.video import probe, read_frame_array

    infos = {name: probe(path) for name, path in videos.items()}
    counts = {name: info.n_frames for name, info in infos.items()}
    if len(set(counts.values())) > 1:
        raise InputError(
            next(iter(videos.values())),
            f"mismatched frame counts: the calibration videos have {counts} frames; frame k of every camera must "
            "show the board at the same moment, so they must be equally long",
        )
    n_frames = next(iter(counts.values()))
    candidates = np.unique(np.linspace(0, n_frames - 1, min(max_candidates, n_frames)).round().astype(np.int64))
    find = board.detector()
    corners = np.full((len(videos), len(candidates), board.n_corners, 2), np.nan)
    for c, (name, path) in enumerate(videos.items()):
        for start in range(0, len(candidates), CHUNK_FRAMES):
            chunk = candidates[start : start + CHUNK_FRAMES]
            for k, image in enumerate(read_frame_array(path, chunk, info=infos[name])):
                _store(corners[c, start + k], find(image))
        if progress:
            progress(f"{name}: board found in {_count(corners[c])} of {len(candidates)} frames looked at")
    detections = Detections(
        tuple(videos),
        tuple((infos[n].width, infos[n].height) for n in videos),
        tuple(f"frame {k}" for k in candidates),
        corners,
        tuple((str(p),) for p in videos.values()),
    )
    return detections.select(choose_frames(detections, max_frames))


def choose_frames(detections: Detections, max_frames: int, min_corners: int = 6) -> np.ndarray:
    """Indices (ascending) of at most `max_frames` frames where the board is seen, spread out.

    Each frame is described, per camera, by where the board's centre is and how large it looks
    (relative to the image), and whether it is seen; farthest-point sampling starts from the frame
    seen by most cameras with most corners, and repeatedly adds the frame farthest from those kept.
    """
    seen = detections.seen(min_corners)  # (C, F)
    usable = np.flatnonzero(seen.any(axis=0))
    if len(usable) <= max_frames:
        return usable
    features = []
    for c, (width, height) in enumerate(detections.sizes):
        points = detections.corners[c, usable]  # (F', N, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # cameras that did not see a frame: NaN rows
            centre = np.nanmean(points, axis=1) / np.array([width, height])  # (F', 2)
            extent = np.nanstd(points, axis=1).sum(axis=1, keepdims=True) / max(width, height)  # (F', 1)
        on = seen[c, usable][:, None]
        features.append(np.where(on, np.hstack([centre, 2 * extent, np.ones_like(extent)]), 0.0))
    features = np.hstack(features)  # (F', 4C)
    count = np.isfinite(detections.corners[..., 0]).sum(axis=(0, 2))[usable]
    chosen = [int(np.argmax(seen[:, usable].sum(axis=0) * 10**6 + count))]
    distance = np.linalg.norm(features - features[chosen[0]], axis=1)
    while len(chosen) < max_frames:
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    return np.sort(usable[chosen])


def _store(row: np.ndarray, detection: Detection) -> None:
    ids, points = detection
    row[ids] = points


def _count(corners: np.ndarray) -> int:
    return int(np.isfinite(corners[..., 0]).any(axis=-1).sum())
