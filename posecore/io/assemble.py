"""Assemble a training dataset from label files: read, merge, map names, load images, validate, split.

`assemble_dataset` is what the `assemble_dataset` workflow rule calls. Every problem with the
input is an `InputError` naming the label file and the row (and the image or keypoint), raised
before anything is written, so a bad label file never yields a half-checked dataset.

What it keeps going through, logging each (module logger `posecore.io.assemble`):

- Corrected labels. Label files are taken in the order given; a frame that a later file labels
  again (the same image file, or the same video and frame number: see `FrameRef.keys`) takes the
  later file's labels, in the earlier one's place. One INFO line per pair of files says
  "N frames of <file> replace labels from <earlier file>". Within one file, a frame labeled
  twice is an error.
- Labels outside their image. The point becomes NaN in `keypoints` and keeps its labeled (x, y)
  in `outside_xy`; one WARNING per point names the file, row and keypoint.
- Images of different sizes. Each is padded with zeros at the bottom and right to the largest
  height and width (pixel coordinates unchanged) and `image_sizes` keeps its own size; one INFO
  line lists the sizes.

Several animals per frame (`max_animals` above 1): every file's rows become instance slots
(`TrainingDataset.tracks` keeps each one's track name; a single-animal file's row is one
instance without a track), packed to the front of each frame, and a frame with more animals
than `max_animals` is an error naming the file and the image. With `max_animals` 1 (the
default) a multi-animal file is accepted when no frame of it holds more than one animal, and
the dataset is the single-animal one it always was.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.io.label_table import FrameRef, LabelTable
from posecore.io.labels import read_labels

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _Label:
    """One labeled frame picked for the dataset: row `row` of table `table`, whose image is `ref`."""

    table: int
    row: int
    ref: FrameRef


def assemble_dataset(
    label_files: Sequence[Path],
    keypoints: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    swap_pairs: Sequence[tuple[str, str]] = (),
    split: SplitConfig = SplitConfig(),  # frozen, so one shared default is safe
    max_animals: int = 1,
    unique_keypoints: Sequence[str] = (),
) -> TrainingDataset:
    """Read label files and their images into one validated, split `TrainingDataset`.

    Frames are in the order of `label_files`, then of the rows within each file, a frame that a
    later file labels again staying where it first came; keypoints are in the order of
    `keypoints`, matched to each file's by name.

    Args:
        label_files: label files of any format `read_labels` knows, earliest first: a later
            file's labels of a frame replace an earlier one's (corrected labels).
        keypoints: the K keypoint names of the config; every file must name exactly these.
        skeleton: edges of the posture graph, as pairs of keypoint names.
        swap_pairs: (left, right) keypoint pairs that swap under a horizontal flip.
        split: how to divide the frames into train / val / test.
        max_animals: the most animals a frame may hold; above 1 the dataset is multi-animal
            (keypoints (N, I, K, 2) with track names), I the most any frame holds.
        unique_keypoints: names of the scene's unique keypoints (multi-animal DeepLabCut's
            "single" individual) to keep; a file's unique keypoint not listed is an error.

    Returns:
        images uint8 (N, H, W, 3) (H, W the largest of the images, smaller ones padded at the
        bottom and right), keypoints float32 (N, K, 2) (x, y) with NaN for missing and for
        labels outside their image, those labels in `outside_xy`, each frame's own size in
        `image_sizes`, the split, and each frame's source video, frame number (-1 when
        unknown) and file.

    Raises:
        InputError: naming the label file and, where it has one, the row: an empty file, a
            keypoint the config lacks or a config keypoint the file lacks, an image that is
            missing or unreadable, the same frame twice in one file, a config keypoint that no
            frame labels (inside its image), a frame with more animals than `max_animals`.
        ValueError: a skeleton edge or swap pair names a keypoint not in `keypoints`, or
            `label_files` or `keypoints` is empty or has duplicates, or `max_animals` < 1.
    """
    names = tuple(keypoints)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"keypoints must be a non-empty list of distinct names, got {list(names)}")
    if not label_files:
        raise ValueError("no label files given")
    if max_animals < 1:
        raise ValueError(f"max_animals must be at least 1, got {max_animals}")
    edges = _name_pairs(skeleton, names, "skeleton edge")
    pairs = _name_pairs(swap_pairs, names, "swap pair")
    tables = [read_labels(label_file) for label_file in label_files]
    orders = [_column_order(table, names) for table in tables]
    for table in tables:
        _check_animal_counts(table, max_animals)
        _check_unique_names(table, tuple(unique_keypoints), max_animals)
    labels = _merge(tables)
    if max_animals > 1:
        return _assemble_multi_animal(tables, orders, labels, label_files, names, edges, pairs, split, unique_keypoints)

    coords = np.stack([_single_row(tables[label.table], label.row)[orders[label.table]] for label in labels])
    coords = coords.astype(np.float32)  # (N, K, 2)
    images, sizes = _load_images(tables, labels)
    outside_xy = _take_outside(tables, labels, coords, sizes, names)
    _check_every_keypoint_labeled(label_files, coords, outside_xy, names)
    return _dataset(labels, images, sizes, coords, outside_xy, names, edges, pairs, split)


def _dataset(
    labels: list[_Label],
    images: np.ndarray,
    sizes: np.ndarray,
    coords: np.ndarray,
    outside_xy: np.ndarray,
    names: tuple[str, ...],
    edges: tuple[tuple[int, int], ...],
    pairs: tuple[tuple[int, int], ...],
    split: SplitConfig,
    **multi_animal,
) -> TrainingDataset:
    """The `TrainingDataset` of the merged labels: split, provenance of every frame, and `multi_animal`'s fields."""
    return TrainingDataset(
        images=images,
        keypoints=coords,
        split=split_frames(len(labels), split),
        keypoint_names=names,
        skeleton=edges,
        swap_pairs=pairs,
        source_video=np.array([label.ref.video for label in labels], dtype=object),
        source_frame=np.array([label.ref.frame for label in labels], dtype=np.int64),
        source_path=np.array([label.ref.location for label in labels], dtype=object),
        image_sizes=sizes,
        outside_xy=outside_xy,
        **multi_animal,
    )


def _load_images(tables: list[LabelTable], labels: list[_Label]) -> tuple[np.ndarray, np.ndarray]:
    """The labeled frames' images padded to one size (N, H, W, 3), and each one's own (H, W) (N, 2)."""
    loaded: list[np.ndarray] = [np.empty(0, np.uint8)] * len(labels)  # (H_i, W_i, 3) each
    for t, table in enumerate(tables):
        slots = [i for i, label in enumerate(labels) if label.table == t]
        for i, image in zip(slots, table.images.load([labels[i].row for i in slots]), strict=True):
            loaded[i] = image
    sizes = np.array([image.shape[:2] for image in loaded], dtype=np.int32).reshape(len(labels), 2)  # (N, 2) (H, W)
    return _pad(loaded, sizes), sizes


def _assemble_multi_animal(
    tables: list[LabelTable],
    orders: list[list[int]],
    labels: list[_Label],
    label_files: Sequence[Path],
    names: tuple[str, ...],
    edges: tuple[tuple[int, int], ...],
    pairs: tuple[tuple[int, int], ...],
    split: SplitConfig,
    unique_keypoints: Sequence[str],
) -> TrainingDataset:
    """The multi-animal dataset of merged `labels`: instances packed into I slots per frame, with tracks."""
    rows = [_instances(tables[label.table], label.row, orders[label.table]) for label in labels]
    n, n_slots = len(labels), max(1, max(len(points) for points, _ in rows))
    coords = np.full((n, n_slots, len(names), 2), np.nan, dtype=np.float32)  # (N, I, K, 2)
    tracks = np.full((n, n_slots), "", dtype=object)  # (N, I)
    for i, (points, track) in enumerate(rows):
        coords[i, : len(points)], tracks[i, : len(points)] = points, track
    images, sizes = _load_images(tables, labels)
    slot_names = tuple(f"instance {i} {name}" for i in range(n_slots) for name in names)
    flat = coords.reshape(n, n_slots * len(names), 2)  # (N, I * K, 2), a view: outside labels become NaN in coords
    outside_xy = _take_outside(tables, labels, flat, sizes, slot_names).reshape(coords.shape)
    _check_every_keypoint_labeled(
        label_files, coords.reshape(-1, len(names), 2), outside_xy.reshape(-1, len(names), 2), names
    )
    unique = tuple(unique_keypoints)
    unique_xy = np.full((n, len(unique), 2), np.nan, dtype=np.float32)  # (N, U, 2)
    for i, label in enumerate(labels):
        table = tables[label.table]
        for u, name in enumerate(unique):
            if name in table.unique_names:
                unique_xy[i, u] = table.unique_keypoints[label.row, table.unique_names.index(name)]
    return _dataset(
        labels, images, sizes, coords, outside_xy, names, edges, pairs, split,
        tracks=tracks, unique_keypoint_names=unique, unique_keypoints=unique_xy if unique else None,
    )  # fmt: skip


def _instances(table: LabelTable, row: int, order: list[int]) -> tuple[np.ndarray, list[str]]:
    """The animals of one row, in the config's keypoint order: float (n, K, 2) and their track names.

    A single-animal row is one untracked animal; a multi-animal row's empty slots are left out.
    """
    if not table.multi_animal:
        return table.keypoints[row][None, order], [""]  # (1, K, 2)
    present = np.flatnonzero(np.isfinite(table.keypoints[row]).all(axis=-1).any(axis=-1))
    return table.keypoints[row][present][:, order], [str(table.tracks[row, i]) for i in present]


def _single_row(table: LabelTable, row: int) -> np.ndarray:
    """One row's keypoints (K, 2) in the file's order, for a single-animal dataset: its animal, or all NaN."""
    if not table.multi_animal:
        return table.keypoints[row]
    present = np.flatnonzero(np.isfinite(table.keypoints[row]).all(axis=-1).any(axis=-1))  # at most one
    return table.keypoints[row, present[0]] if len(present) else np.full(table.keypoints.shape[2:], np.nan)


def _check_animal_counts(table: LabelTable, max_animals: int) -> None:
    """Raise naming the file and the image when a row holds more animals than `max_animals`."""
    counts = table.instance_counts()
    if counts.max(initial=0) > max_animals:
        row = int(np.argmax(counts))
        more = (
            "set dataset.max_animals to the most animals a frame can hold"
            if max_animals == 1
            else "raise dataset.max_animals if the frame really holds that many"
        )
        raise InputError(
            table.path,
            f"image {table.image_paths[row]!r} has {counts[row]} animals, more than dataset.max_animals "
            f"({max_animals}); {more}",
            where=f"row {row}",
        )


def _check_unique_names(table: LabelTable, unique: tuple[str, ...], max_animals: int) -> None:
    """Raise when a file's unique (scene) keypoints are not among those the config keeps."""
    extra = [name for name in table.unique_names if name not in unique]
    if extra:
        raise InputError(
            table.path,
            f"unique body parts {extra} (individual 'single') are not in the config's dataset.unique_keypoints "
            f"{list(unique)}",
            where="header",
        )
    if unique and max_animals == 1:
        raise ValueError("unique_keypoints belong to multi-animal datasets: set max_animals above 1")


def _merge(tables: list[LabelTable]) -> list[_Label]:
    """Locate every row's image and keep one label per frame: a later file's replaces an earlier one's."""
    labels: list[_Label | None] = []
    owner: dict[tuple, int] = {}  # frame key -> index into labels
    for t, table in enumerate(tables):
        in_file: dict[tuple, int] = {}  # frame key -> row of this file
        replaced: Counter[int] = Counter()  # earlier table -> frames of this one replacing its labels
        for row in range(len(table)):
            ref = table.images.locate(row)
            keys = ref.keys()
            twice = next((in_file[key] for key in keys if key in in_file), None)
            if twice is not None:
                raise InputError(
                    table.path,
                    f"image {table.image_paths[row]!r} is labeled twice, also in row {twice}",
                    where=f"row {row}",
                )
            in_file.update((key, row) for key in keys)
            earlier = sorted({owner[key] for key in keys if key in owner})
            label = _Label(t, row, ref)
            if earlier:
                for i in earlier:
                    old = labels[i]
                    if old is not None:
                        replaced[old.table] += 1
                    labels[i] = None
                slot = earlier[0]  # the frame stays where it first came
                labels[slot] = label
            else:
                slot = len(labels)
                labels.append(label)
            owner.update((key, slot) for key in keys)
        for old_table, count in replaced.items():
            logger.info("%d frames of %s replace labels from %s", count, table.path, tables[old_table].path)
    return [label for label in labels if label is not None]


def _take_outside(
    tables: list[LabelTable], labels: list[_Label], coords: np.ndarray, sizes: np.ndarray, names: tuple[str, ...]
) -> np.ndarray:
    """Move labels outside their image from `coords` (N, J, 2), in place, to the returned (N, J, 2).

    `names` names the J points (keypoints, or instance slots' keypoints). A point is inside when
    -0.5 <= x <= W - 0.5 and -0.5 <= y <= H - 0.5 (the outer edges of the border pixels), W and H
    its own image's size.
    """
    limits = sizes[:, None, ::-1].astype(np.float32) - 0.5  # (N, 1, 2) (W - 0.5, H - 0.5)
    with np.errstate(invalid="ignore"):
        outside = ((coords < -0.5) | (coords > limits)).any(axis=2)  # (N, K), NaN compares False
    outside_xy = np.full_like(coords, np.nan)
    outside_xy[outside] = coords[outside]
    coords[outside] = np.nan
    for i, k in zip(*np.nonzero(outside), strict=True):
        label = labels[i]
        height, width = (int(v) for v in sizes[i])
        x, y = (float(v) for v in outside_xy[i, k])
        logger.warning(
            "%s (row %d): keypoint %r at (%g, %g) is outside image %r (%dx%d); it is left unlabeled (NaN) and "
            "kept in outside_xy",
            tables[label.table].path,
            label.row,
            names[k],
            x,
            y,
            tables[label.table].image_paths[label.row],
            width,
            height,
        )
    return outside_xy


def _check_every_keypoint_labeled(
    label_files: Sequence[Path], coords: np.ndarray, outside_xy: np.ndarray, names: tuple[str, ...]
) -> None:
    """Raise if a keypoint has no label (inside its image) in any frame: nothing could learn it."""
    never = np.isnan(coords).any(axis=2).all(axis=0)  # (K,)
    if never.any():
        k = int(np.flatnonzero(never)[0])
        n_outside = int((~np.isnan(outside_xy[:, k, 0])).sum())
        why = f" ({n_outside} labels of it lie outside their images)" if n_outside else ""
        files = ", ".join(str(f) for f in label_files)
        raise InputError(label_files[0], f"keypoint {names[k]!r} is labeled in no frame of {files}{why}")


def _pad(images: list[np.ndarray], sizes: np.ndarray) -> np.ndarray:
    """Stack (H_i, W_i, 3) images into (N, H, W, 3), H and W the largest, zeros at the bottom and right."""
    height, width = (int(v) for v in sizes.max(axis=0))
    out = np.zeros((len(images), height, width, 3), dtype=np.uint8)  # (N, H, W, 3)
    for i, image in enumerate(images):
        out[i, : image.shape[0], : image.shape[1]] = image
    distinct = Counter((int(w), int(h)) for h, w in sizes)
    if len(distinct) > 1:
        listed = ", ".join(f"{w}x{h}: {count} frames" for (w, h), count in sorted(distinct.items()))
        logger.info(
            "images come in %d sizes (%s); smaller ones are padded with zeros at the bottom and right to %dx%d",
            len(distinct),
            listed,
            width,
            height,
        )
    return out


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
