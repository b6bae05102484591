"""The training dataset: one self-contained HDF5 file (docs/design.md, "Training dataset").

Layout of the file:

    /images            uint8   (N, H, W, C)   the labeled frames, C = 3 (RGB) or 1 (grey)
    /keypoints         float32 (N, K, 2)      (x, y) in pixels, x the column, y the row,
                                               centre of the top-left pixel at (0, 0); NaN = missing
    /split             str     (N,)           "train", "val" or "test"
    /source/video      str     (N,)           the video (or labeled-data folder) a frame came from
    /source/frame      int64   (N,)           its frame index in that video, -1 when unknown
    /source/path       str     (N,)           the file it was read from (image, video, or SLEAP package)
    /image_sizes       int32   (N, 2)         each frame's own (height, width) before padding (format 2)
    /outside_xy        float32 (N, K, 2)      labels that lay outside their image, as labeled (x, y);
                                               NaN everywhere else (format 2)
    attrs: format_version, keypoint_names, skeleton (E, 2) int, swap_pairs (S, 2) int,
           content_hash (sha256, see `TrainingDataset.content_hash`), posecore_version

A multi-animal dataset (format 3) holds several animals per frame: `/keypoints` and
`/outside_xy` are (N, I, K, 2), I instance slots per frame (the most animals any frame has; an
all-NaN slot holds no animal, and a frame may hold none), and

    /tracks            str     (N, I)         each instance's track (individual) name, "" for none
    /unique/keypoints  float32 (N, U, 2)      the scene's unique keypoints (multi-animal
                                               DeepLabCut's "single" individual), when there are any
    attrs: unique_keypoint_names

Single-animal datasets are written as format 2, exactly as before.

Frames of different sizes share one (H, W), the largest: a smaller frame is padded with zeros at
the bottom and right, so its pixel coordinates are unchanged, and `image_sizes` keeps its own
size. Files of format 1 have neither `image_sizes` nor `outside_xy`; they read as every frame at
the full size and no label outside.

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

FORMAT_VERSION = 2
MULTI_ANIMAL_FORMAT_VERSION = 3
READ_VERSIONS = (1, 2, 3)  # format 1: without image_sizes and outside_xy; 3: several animals per frame
Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class TrainingDataset:
    """Labeled frames with their keypoints, split and provenance, all in memory.

    Attributes:
        images: uint8 (N, H, W, C).
        keypoints: float32 (N, K, 2), (x, y) in image pixels, NaN where not labeled; in a
            multi-animal dataset (`tracks` given) (N, I, K, 2), an all-NaN slot holding no animal.
        split: str (N,), each "train", "val" or "test".
        keypoint_names: the K names, in the order of the keypoints' second axis.
        skeleton: pairs of keypoint indices (edges of the posture graph).
        swap_pairs: pairs of keypoint indices that swap under a horizontal flip (left, right).
        source_video: str (N,), where each frame came from.
        source_frame: int64 (N,), the frame's index in its video, -1 when unknown.
        source_path: str (N,), the file each frame was read from: an image, or the video (or
            SLEAP package, `<file>#<dataset>`) holding it.
        image_sizes: int32 (N, 2), each frame's own (height, width) before padding to the
            dataset's (H, W). Left out: every frame is (H, W).
        outside_xy: float32, the shape of `keypoints`: (x, y) of the labels that lay outside
            their image (NaN in `keypoints` there), NaN everywhere else. Left out: all NaN.
        tracks: str (N, I) object array, the track name of each instance slot ("" for an empty
            slot or an untracked animal); given only for a multi-animal dataset.
        unique_keypoint_names: the U names of the scene's unique keypoints (multi-animal only).
        unique_keypoints: float32 (N, U, 2) (x, y) of those, NaN where not labeled.
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
    image_sizes: np.ndarray | None = None
    outside_xy: np.ndarray | None = None
    tracks: np.ndarray | None = None
    unique_keypoint_names: tuple[str, ...] = ()
    unique_keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, k = len(self.images), len(self.keypoint_names)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.tracks is not None:
            object.__setattr__(self, "tracks", np.asarray(self.tracks, dtype=object))
            slots = self.tracks.shape[1] if self.tracks.ndim == 2 else -1
            if self.tracks.shape != (n, slots) or self.keypoints.shape != (n, slots, k, 2):
                raise ValueError(
                    f"a multi-animal dataset needs keypoints (N, I, K, 2) = ({n}, I, {k}, 2) and tracks (N, I); got "
                    f"{self.keypoints.shape} and {self.tracks.shape}"
                )
        elif self.keypoints.shape != (n, k, 2):
            raise ValueError(f"keypoints must be (N, K, 2) = ({n}, {k}, 2), got {self.keypoints.shape}")
        u = len(self.unique_keypoint_names)
        if u and (self.unique_keypoints is None or self.unique_keypoints.shape != (n, u, 2)):
            shape = None if self.unique_keypoints is None else self.unique_keypoints.shape
            raise ValueError(f"unique_keypoints must be (N, U, 2) = ({n}, {u}, 2), got {shape}")
        if len(self.split) != n:
            raise ValueError(f"split must have one entry per frame ({n}), got {len(self.split)}")
        for name in ("source_video", "source_frame", "source_path"):
            if len(getattr(self, name)) not in (0, n):
                raise ValueError(f"{name} must have one entry per frame ({n})")
        # Frozen: fill the defaults of the two per-frame arrays through object.__setattr__.
        if self.image_sizes is None:
            object.__setattr__(self, "image_sizes", np.tile(np.array(self.image_size, np.int32), (n, 1)))
        object.__setattr__(self, "image_sizes", np.asarray(self.image_sizes, dtype=np.int32))
        if self.image_sizes.shape != (n, 2):
            raise ValueError(f"image_sizes must be (N, 2) = ({n}, 2), got {self.image_sizes.shape}")
        if ((self.image_sizes < 1) | (self.image_sizes > np.array(self.image_size))).any():
            raise ValueError(f"image_sizes must lie in [1, (H, W) = {self.image_size}]")
        if self.outside_xy is None:
            object.__setattr__(self, "outside_xy", np.full(self.keypoints.shape, np.nan, dtype=np.float32))
        object.__setattr__(self, "outside_xy", np.asarray(self.outside_xy, dtype=np.float32))
        if self.outside_xy.shape != self.keypoints.shape:
            raise ValueError(
                f"outside_xy must have the shape of keypoints {self.keypoints.shape}, got {self.outside_xy.shape}"
            )

    @property
    def multi_animal(self) -> bool:
        """Whether frames hold instance slots: keypoints (N, I, K, 2) with `tracks`."""
        return self.tracks is not None

    def instance_counts(self) -> np.ndarray:
        """Animals in each frame, int (N,): slots with a labeled keypoint (1 per frame single-animal)."""
        if not self.multi_animal:
            return np.ones(len(self.images), dtype=np.int64)
        return np.isfinite(self.keypoints).all(axis=-1).any(axis=-1).sum(axis=1)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def indices(self, split: Split) -> np.ndarray:
        """Indices of the frames in one split, in file order."""
        return np.flatnonzero(self.split == split)

    @property
    def padded(self) -> np.ndarray:
        """Which frames are padded, bool (N,): those smaller than (H, W), padded with zeros at the bottom and right."""
        return (self.image_sizes != np.array(self.image_size)).any(axis=1)

    def content_hash(self) -> str:
        """sha256 over images, keypoints, split and keypoint names: equal data, equal hash.

        `image_sizes` and `outside_xy` count too, but only when they say something (a padded
        frame, a label outside), so a dataset without either hashes as format 1 did.
        """
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.keypoints, dtype=np.float32).tobytes())
        digest.update("\n".join(map(str, self.split)).encode())
        digest.update("\n".join(self.keypoint_names).encode())
        if self.padded.any():
            digest.update(b"image_sizes" + np.ascontiguousarray(self.image_sizes, dtype="<i4").tobytes())
        if not np.isnan(self.outside_xy).all():
            digest.update(b"outside_xy" + np.ascontiguousarray(self.outside_xy, dtype="<f4").tobytes())
        if self.multi_animal:
            digest.update(b"tracks" + "\n".join(map(str, self.tracks.reshape(-1))).encode())
        if self.unique_keypoint_names:
            digest.update("\n".join(self.unique_keypoint_names).encode())
            digest.update(np.ascontiguousarray(self.unique_keypoints, dtype="<f4").tobytes())
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
        f.create_dataset("image_sizes", data=dataset.image_sizes.astype(np.int32))
        f.create_dataset("outside_xy", data=dataset.outside_xy.astype(np.float32))
        f.attrs["format_version"] = FORMAT_VERSION
        if dataset.multi_animal:
            f.attrs["format_version"] = MULTI_ANIMAL_FORMAT_VERSION
            f.create_dataset("tracks", data=dataset.tracks.astype(object), dtype=text)
            f.attrs["unique_keypoint_names"] = list(dataset.unique_keypoint_names)
            if dataset.unique_keypoint_names:
                f.create_dataset("unique/keypoints", data=dataset.unique_keypoints.astype(np.float32))
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
            if version not in READ_VERSIONS:
                raise InputError(path, f"dataset format version {version}, this posecore reads {list(READ_VERSIONS)}")
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
                image_sizes=f["image_sizes"][()] if "image_sizes" in f else None,
                outside_xy=f["outside_xy"][()] if "outside_xy" in f else None,
                tracks=_decode(f["tracks"][()].reshape(-1)).reshape(f["tracks"].shape) if "tracks" in f else None,
                unique_keypoint_names=tuple(str(n) for n in f.attrs.get("unique_keypoint_names", ())),
                unique_keypoints=f["unique/keypoints"][()] if "unique/keypoints" in f else None,
            )
            stored_hash = str(f.attrs["content_hash"])
    except (OSError, KeyError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(path, f"not a posecore training dataset ({error})") from error
    if dataset.content_hash() != stored_hash:
        raise InputError(path, "content hash does not match the stored one: the file is damaged")
    return dataset
