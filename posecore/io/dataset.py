"""The training dataset: one self-contained HDF5 file (DESIGN.md, "Training dataset").

Layout of the file:

    /images            uint8   (N, H, W, C)   the labeled frames, C = 3 (RGB) or 1 (grey)
    /keypoints         float32 (N, K, 2)      (x, y) in pixels, x the column, y the row,
                                               centre of the top-left pixel at (0, 0); NaN = missing
    /split             str     (N,)           "train", "val" or "test"
    /source/video      str     (N,)           the video (or labeled-data folder) a frame came from
    /source/frame      int64   (N,)           its frame index in that video, -1 when unknown
    /source/path       str     (N,)           the image file it was read from
    attrs: format_version, keypoint_names, skeleton (E, 2) int, swap_pairs (S, 2) int,
           content_hash (sha256 of images, keypoints and names), posecore_version

Training reads only this file; it never opens the source videos or images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path

FORMAT_VERSION = 1
Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class TrainingDataset:
    """Labeled frames with their keypoints, split and provenance, all in memory.

    Attributes:
        images: uint8 (N, H, W, C).
        keypoints: float32 (N, K, 2), (x, y) in image pixels, NaN where not labeled.
        split: str (N,), each "train", "val" or "test".
        keypoint_names: the K names, in the order of the keypoints' second axis.
        skeleton: pairs of keypoint indices (edges of the posture graph).
        swap_pairs: pairs of keypoint indices that swap under a horizontal flip (left, right).
        source_video: str (N,), where each frame came from.
        source_frame: int64 (N,), the frame's index in its video, -1 when unknown.
        source_path: str (N,), the image file each frame was read from.
    """

    images: np.ndarray
    keypoints: np.ndarray
    split: np.ndarray
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    swap_pairs: tuple[tuple[int, int], ...] = ()
    source_video: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    source_frame: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    source_path: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))

    def __post_init__(self) -> None:
        n, k = len(self.images), len(self.keypoint_names)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.keypoints.shape != (n, k, 2):
            raise ValueError(f"keypoints must be (N, K, 2) = ({n}, {k}, 2), got {self.keypoints.shape}")
        if len(self.split) != n:
            raise ValueError(f"split must have one entry per frame ({n}), got {len(self.split)}")
        for name in ("source_video", "source_frame", "source_path"):
            if len(getattr(self, name)) not in (0, n):
                raise ValueError(f"{name} must have one entry per frame ({n})")

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def indices(self, split: Split) -> np.ndarray:
        """Indices of the frames in one split, in file order."""
        return np.flatnonzero(self.split == split)

    def content_hash(self) -> str:
        """sha256 over images, keypoints, split and keypoint names: equal data, equal hash."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.keypoints, dtype=np.float32).tobytes())
        digest.update("\n".join(map(str, self.split)).encode())
        digest.update("\n".join(self.keypoint_names).encode())
        return digest.hexdigest()


def _strings(values: np.ndarray | list[str], n: int, default: str = "") -> np.ndarray:
    array = np.asarray(values, dtype=object)
    return array if len(array) == n else np.full(n, default, dtype=object)


def write_dataset(dataset: TrainingDataset, path: str | Path) -> str:
    """Write a dataset atomically (temporary name, then rename); return its content hash."""
    n = len(dataset.images)
    content_hash = dataset.content_hash()
    text = h5py.string_dtype()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("images", data=dataset.images, chunks=(1, *dataset.images.shape[1:]), compression="lzf")
        f.create_dataset("keypoints", data=dataset.keypoints.astype(np.float32))
        f.create_dataset("split", data=np.asarray(dataset.split, dtype=object), dtype=text)
        f.create_dataset("source/video", data=_strings(dataset.source_video, n), dtype=text)
        frames = dataset.source_frame if len(dataset.source_frame) == n else np.full(n, -1)
        f.create_dataset("source/frame", data=np.asarray(frames, dtype=np.int64))
        f.create_dataset("source/path", data=_strings(dataset.source_path, n), dtype=text)
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["keypoint_names"] = list(dataset.keypoint_names)
        f.attrs["skeleton"] = np.asarray(dataset.skeleton, dtype=np.int64).reshape(-1, 2)
        f.attrs["swap_pairs"] = np.asarray(dataset.swap_pairs, dtype=np.int64).reshape(-1, 2)
        f.attrs["content_hash"] = content_hash
        f.attrs["posecore_version"] = __version__
    return content_hash


def _decode(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_dataset(path: str | Path) -> TrainingDataset:
    """Read a dataset written by `write_dataset`, checking its format version and hash."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "training dataset not found")
    try:
        with h5py.File(path, "r") as f:
            version = int(f.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise InputError(path, f"dataset format version {version}, expected {FORMAT_VERSION}")
            dataset = TrainingDataset(
                images=f["images"][()],
                keypoints=f["keypoints"][()].astype(np.float32),
                split=_decode(f["split"][()]),
                keypoint_names=tuple(str(name) for name in f.attrs["keypoint_names"]),
                skeleton=tuple(tuple(int(i) for i in edge) for edge in f.attrs["skeleton"]),
                swap_pairs=tuple(tuple(int(i) for i in pair) for pair in f.attrs["swap_pairs"]),
                source_video=_decode(f["source/video"][()]),
                source_frame=f["source/frame"][()],
                source_path=_decode(f["source/path"][()]),
            )
            stored_hash = str(f.attrs["content_hash"])
    except (OSError, KeyError) as error:
        raise InputError(path, f"not a posecore training dataset ({error})") from error
    if dataset.content_hash() != stored_hash:
        raise InputError(path, "content hash does not match the stored one: the file is damaged")
    return dataset
