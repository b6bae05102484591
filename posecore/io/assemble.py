"""Assemble a training dataset from label files: read, map names, load images, validate, split.

`assemble_dataset` is what the `assemble_dataset` workflow rule calls. Every problem with the
input is an `InputError` naming the label file and the row (and the image or keypoint), raised
before anything is written, so a bad label file never yields a half-checked dataset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import matplotlib.image
import numpy as np

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.io.labels import LabelTable, frame_index, read_labels, resolve_image


@dataclass(frozen=True)
class SplitConfig:
    """How frames are divided into train / val / test.

    Attributes:
        val_fraction: share of frames for validation, in [0, 1).
        test_fraction: share of frames for testing, in [0, 1).
        seed: seed of the shuffle; the same frames and seed always give the same split.
    """

    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must leave frames to train on, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )


def split_frames(n_frames: int, split: SplitConfig) -> np.ndarray:
    """Assign each of `n_frames` frames to "train", "val" or "test", seeded and deterministic.

    Frame indices are shuffled with `numpy.random.default_rng(seed)`; the first
    round(test_fraction * N) go to test, the next round(val_fraction * N) to val, the rest to
    train. With N >= 3, a fraction above 0 gets at least one frame; at least one frame is always
    left to train on.

    Returns:
        str (N,) object array of split names, in frame order.
    """
    n_test = _count(split.test_fraction, n_frames)
    n_val = _count(split.val_fraction, n_frames)
    while n_frames > 0 and n_test + n_val > n_frames - 1:  # keep one training frame: shrink the larger split
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng(split.seed).permutation(n_frames)
    names = np.full(n_frames, "train", dtype=object)
    names[order[:n_test]] = "test"
    names[order[n_test : n_test + n_val]] = "val"
    return names


def _count(fraction: float, n_frames: int) -> int:
    count = math.floor(fraction * n_frames + 0.5)  # round half up, unlike Python's round()
    return max(count, 1) if fraction > 0 and n_frames >= 3 else count


def load_image(path: str | Path) -> np.ndarray:
    """Read a PNG or JPEG image as uint8 RGB (H, W, 3); grey is replicated, alpha dropped.

    Raises:
        OSError or ValueError: the file cannot be decoded (`assemble_dataset` turns these into an
            `InputError` naming the label file and row).
    """
    image = np.asarray(matplotlib.image.imread(path))
    if image.dtype.kind == "f":  # PNGs come back as float in [0, 1], whatever their bit depth
        image = np.clip(np.rint(image * 255.0), 0, 255)
    image = image.astype(np.uint8)
    if image.ndim == 2:  # grey (H, W) -> (H, W, 3)
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] in (1, 2):  # grey (+ alpha) -> (H, W, 3)
        image = np.repeat(image[:, :, :1], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:  # RGBA -> RGB
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"unsupported image shape {image.shape}")
    return np.ascontiguousarray(image)


def source_video(label_path: Path, image_path: str) -> str:
    """The video a labeled frame came from: its folder under labeled-data.

    `labeled-data/<video>/img0001.png` gives `<video>`. When the image sits directly in
    `labeled-data/` (Lightning Pose), or its path has no folder, the label file's folder name
    (the project) stands in.
    """
    parent = PurePosixPath(image_path.replace("\\", "/")).parent.name
    return parent if parent not in ("", "labeled-data") else label_path.parent.absolute().name


def assemble_dataset(
    label_files: Sequence[Path],
    keypoints: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    swap_pairs: Sequence[tuple[str, str]] = (),
    split: SplitConfig = SplitConfig(),  # frozen, so one shared default is safe
) -> TrainingDataset:
    """Read label files and their images into one validated, split `TrainingDataset`.

    Frames are in the order of `label_files`, then of the rows within each file; keypoints in the
    order of `keypoints`, matched to each file's by name.

    Args:
        label_files: label files of any format `read_labels` knows.
        keypoints: the K keypoint names of the config; every file must name exactly these.
        skeleton: edges of the posture graph, as pairs of keypoint names.
        swap_pairs: (left, right) keypoint pairs that swap under a horizontal flip.
        split: how to divide the frames into train / val / test.

    Returns:
        images uint8 (N, H, W, 3), keypoints float32 (N, K, 2) (x, y) with NaN for missing,
        the split, and each frame's source video, frame number (-1 when the image name has
        none) and image path.

    Raises:
        InputError: naming the label file and, where it has one, the row: an empty file, a
            keypoint the config lacks or a config keypoint the file lacks, an image that is
            missing or unreadable, an image of another size than the first, a coordinate outside
            the image (x < -0.5 or x > W - 0.5, the same for y), the same image twice.
        ValueError: a skeleton edge or swap pair names a keypoint not in `keypoints`, or
            `label_files` or `keypoints` is empty or has duplicates.
    """
    names = tuple(keypoints)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"keypoints must be a non-empty list of distinct names, got {list(names)}")
    if not label_files:
        raise ValueError("no label files given")
    edges = _name_pairs(skeleton, names, "skeleton edge")
    pairs = _name_pairs(swap_pairs, names, "swap pair")

    images: list[np.ndarray] = []
    coords: list[np.ndarray] = []
    videos: list[str] = []
    frames: list[int] = []
    paths: list[str] = []
    first: tuple[Path, int, str, tuple[int, int]] | None = None  # (label file, row, image, (H, W)) of frame 0
    seen: dict[Path, tuple[Path, int]] = {}  # resolved image -> (label file, row)
    for label_file in label_files:
        table = read_labels(label_file)
        order = _column_order(table, names)
        for row, image_path in enumerate(table.image_paths):
            where = f"row {row}"
            found = resolve_image(table.path, image_path, row=row)
            key = found.resolve()
            if key in seen:
                other_file, other_row = seen[key]
                other = f"row {other_row}" if other_file == table.path else f"{other_file} (row {other_row})"
                raise InputError(table.path, f"image {image_path!r} is labeled twice, also in {other}", where=where)
            seen[key] = (table.path, row)
            try:
                image = load_image(found)
            except (OSError, ValueError, SyntaxError) as error:
                raise InputError(table.path, f"cannot read image {str(found)!r} ({error})", where=where) from error
            size = (image.shape[0], image.shape[1])
            if first is None:
                first = (table.path, row, image_path, size)
            elif size != first[3]:
                at = f"row {first[1]}" if first[0] == table.path else f"{first[0]} (row {first[1]})"
                raise InputError(
                    table.path,
                    f"image {image_path!r} is {size[1]}x{size[0]} (WxH) but image {first[2]!r} in {at} is "
                    f"{first[3][1]}x{first[3][0]}: all images of a dataset must have one size",
                    where=where,
                )
            xy = table.keypoints[row][order]  # (K, 2) (x, y), in config order
            _check_inside(table.path, row, image_path, xy, names, size)
            images.append(image)
            coords.append(xy)
            videos.append(source_video(table.path, image_path))
            frames.append(frame_index(image_path))
            paths.append(str(found))

    return TrainingDataset(
        images=np.stack(images),  # (N, H, W, 3)
        keypoints=np.stack(coords).astype(np.float32),  # (N, K, 2)
        split=split_frames(len(images), split),
        keypoint_names=names,
        skeleton=edges,
        swap_pairs=pairs,
        source_video=np.array(videos, dtype=object),
        source_frame=np.array(frames, dtype=np.int64),
        source_path=np.array(paths, dtype=object),
    )


def _name_pairs(pairs: Sequence[tuple[str, str]], names: tuple[str, ...], what: str) -> tuple[tuple[int, int], ...]:
    index = {name: i for i, name in enumerate(names)}
    result = []
    for pair in pairs:
        unknown = [name for name in pair if name not in index]
        if len(pair) != 2 or unknown:
            raise ValueError(f"{what} {tuple(pair)} names {unknown or pair}, not keypoints of {list(names)}")
        result.append((index[pair[0]], index[pair[1]]))
    return tuple(result)


def _column_order(table: LabelTable, names: tuple[str, ...]) -> list[int]:
    """Indices into the file's keypoints that put them in the config's order."""
    extra = [name for name in table.keypoint_names if name not in names]
    if extra:
        raise InputError(
            table.path, f"keypoints {extra} are not in the config's keypoints {list(names)}", where="header"
        )
    missing = [name for name in names if name not in table.keypoint_names]
    if missing:
        raise InputError(
            table.path,
            f"config keypoints {missing} are missing from the file, which has {list(table.keypoint_names)}",
            where="header",
        )
    return [table.keypoint_names.index(name) for name in names]


def _check_inside(
    label_file: Path, row: int, image_path: str, xy: np.ndarray, names: tuple[str, ...], size: tuple[int, int]
) -> None:
    """Raise if a labeled (non-NaN) point of `xy` (K, 2) lies outside an image of `size` (H, W)."""
    height, width = size
    with np.errstate(invalid="ignore"):
        outside = (xy < -0.5) | (xy > np.array([width - 0.5, height - 0.5]))  # (K, 2), NaN compares False
    if outside.any():
        k, c = (int(a[0]) for a in np.nonzero(outside))
        raise InputError(
            label_file,
            f"keypoint {names[k]!r} {'xy'[c]} = {xy[k, c]:g} is outside image {image_path!r} "
            f"({width}x{height}, valid {'x' if c == 0 else 'y'} range [-0.5, {(width if c == 0 else height) - 0.5}])",
            where=f"row {row}",
        )
