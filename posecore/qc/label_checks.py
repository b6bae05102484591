"""Finding label problems that need the whole dataset: left/right swaps and duplicate frames.

`suspected_swaps` aligns every frame to the body's usual shape (generalized Procrustes) and flags
frames whose left/right pair sits nearer each other's usual places than their own;
`duplicate_groups` groups frames whose grey thumbnails (near-)match and says whether their labels
agree. `frame_source` names a dataset row by where it came from, for every table of the report.
`posecore.qc.labels` puts these findings together with the counts into `LabelQC`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
from PIL import Image
from scipy.spatial import cKDTree

from posecore.io.dataset import TrainingDataset

Alignment = Literal["rigid", "translation"]
"""How a frame is put in the body's frame of reference: rotation and translation, or translation only."""
THUMBNAIL = 16
"""Side of the grey thumbnails compared to find duplicate frames, in cells."""


@dataclass(frozen=True)
class SuspectedSwap:
    """A frame whose left/right labels sit nearer each other's usual places than their own.

    Attributes:
        frame: dataset row.
        source: where the frame came from (`frame_source`).
        left, right: the swap pair's keypoint names.
        kept_px: summed distance (px) of the pair's labels to their own usual places.
        swapped_px: the same, to each other's usual places; below `kept_px` here.
    """

    frame: int
    source: str
    left: str
    right: str
    kept_px: float
    swapped_px: float

    @property
    def margin_px(self) -> float:
        """How much nearer (px) the swapped places are: the larger, the surer the swap."""
        return self.kept_px - self.swapped_px


@dataclass(frozen=True)
class SwapPair:
    """How well one left/right pair can be told apart by where it sits on the body.

    Attributes:
        left, right: the pair's keypoint names.
        separation_px: distance between the two usual places (NaN: one is never labeled).
        scatter_px: the larger of the two keypoints' median distance to their own usual place.
        checked: whether the pair was checked for swaps: its places are at least `min_separation`
            times its scatter apart (else being nearer the other's place happens without a swap,
            e.g. paws of a running animal seen from the side).
        n_suspected: frames suspected of swapping it.
    """

    left: str
    right: str
    separation_px: float
    scatter_px: float
    checked: bool
    n_suspected: int


@dataclass(frozen=True)
class DuplicateGroup:
    """Frames whose images are identical or near-identical (same thumbnail within a tolerance).

    Attributes:
        frames: dataset rows, ascending.
        sources: where each came from.
        identical: every image is byte-for-byte the same.
        labels_agree: every frame has the same keypoints labeled, each within `label_tolerance_px`.
        max_label_diff_px: largest distance between the same keypoint's labels (NaN: none in common).
    """

    frames: tuple[int, ...]
    sources: tuple[str, ...]
    identical: bool
    labels_agree: bool
    max_label_diff_px: float


def frame_source(dataset: TrainingDataset, row: int) -> str:
    """Where dataset row `row` came from: "<video> frame <n>", else "<video>/<image>", else "row <row>"."""
    video = str(dataset.source_video[row]) if len(dataset.source_video) else ""
    frame = int(dataset.source_frame[row]) if len(dataset.source_frame) else -1
    path = str(dataset.source_path[row]) if len(dataset.source_path) else ""
    if frame >= 0:
        return f"{video} frame {frame}".strip()
    if path:
        name = PurePosixPath(path.replace("\\", "/")).name
        return f"{video}/{name}" if video else name
    return video or f"row {row}"


def _fit(source: np.ndarray, target: np.ndarray, rigid: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R (2, 2) and translation t (2,) with `source @ R.T + t` ≈ `target`, both (M, 2), M >= 1.

    Least squares (Kabsch, no reflection, no scale); translation only when `rigid` is False or M < 2.
    """
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)  # (2,) each
    rotation = np.eye(2)
    if rigid and len(source) >= 2:
        u, _, vt = np.linalg.svd((source - source_mean).T @ (target - target_mean))  # of the (2, 2) covariance
        d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
        rotation = vt.T @ np.diag([1.0, d]) @ u.T
    return rotation, target_mean - source_mean @ rotation.T


def _reference_shape(xy: np.ndarray, labeled: np.ndarray, rigid: bool) -> tuple[np.ndarray, np.ndarray]:
    """The usual (K, 2) body shape, and every frame aligned to it (N, K, 2), NaN where unlabeled.

    Generalized Procrustes: starts from the frame with the most labeled keypoints, aligns every
    frame to the shape on the keypoints they share, takes the per-keypoint median, three times.
    Keypoints never labeled stay NaN.
    """
    reference = xy[int(np.argmax(labeled.sum(axis=1)))].copy()  # (K, 2)
    aligned = np.full_like(xy, np.nan)  # (N, K, 2)
    for _ in range(3):
        aligned = np.full_like(xy, np.nan)
        for f in range(len(xy)):
            common = labeled[f] & np.isfinite(reference).all(axis=-1)  # (K,)
            if common.sum() >= 2:
                rotation, shift = _fit(xy[f, common], reference[common], rigid)
                aligned[f, labeled[f]] = xy[f, labeled[f]] @ rotation.T + shift
        if not np.isfinite(aligned).any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": keypoints never labeled stay NaN
            reference = np.nanmedian(aligned, axis=0)  # (K, 2)
    return reference, aligned


def suspected_swaps(
    dataset: TrainingDataset,
    xy: np.ndarray,
    labeled: np.ndarray,
    alignment: Alignment,
    min_separation: float,
    min_margin: float,
) -> tuple[tuple[SwapPair, ...], tuple[SuspectedSwap, ...]]:
    """Frames where a swap pair's labels sit nearer each other's usual places, relative to the body.

    Each frame is aligned to the usual shape on its other labeled keypoints (the pair left out, so
    a swap cannot pull the alignment); then the pair's summed distance to their own usual places
    is compared with the distance to each other's (with one of the pair unlabeled, that one's);
    the frame is suspected when the latter is shorter by `min_margin` times the places' separation.
    Pairs whose usual places are too close for their scatter are not checked (see `SwapPair`).

    Args:
        dataset: the dataset; its `swap_pairs` (keypoint indices) are checked.
        xy: float64 (N, K, 2) its keypoints as (x, y) pixels, NaN where unlabeled.
        labeled: bool (N, K) where `xy` is finite.
        alignment: "rigid" or "translation" (see `label_qc`).
        min_separation: a pair is checked when its usual places are this many times its scatter apart.
        min_margin: the fraction of the places' separation by which the swapped places must be nearer.

    Returns:
        Every swap pair in `dataset.swap_pairs` order, and the suspected frames, largest margin first.
    """
    if not dataset.swap_pairs or len(xy) == 0:
        return (), ()
    rigid = alignment == "rigid"
    reference, aligned = _reference_shape(xy, labeled, rigid)  # (K, 2), (N, K, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # keypoints never labeled: NaN scatter
        scatter = np.nanmedian(np.linalg.norm(aligned - reference, axis=-1), axis=0)  # (K,)
    known = np.isfinite(reference).all(axis=-1)  # (K,)
    names = dataset.keypoint_names
    pairs, found = [], []
    for a, b in dataset.swap_pairs:
        separation = float(np.linalg.norm(reference[a] - reference[b]))
        spread = float(max(scatter[a], scatter[b]))
        checked = bool(known[a] and known[b] and separation >= min_separation * spread)
        suspects = []
        for f in range(len(xy) if checked else 0):
            others = labeled[f] & known
            others[[a, b]] = False
            pair = [k for k in (a, b) if labeled[f, k]]
            if not pair or others.sum() < (2 if rigid else 1):
                continue
            rotation, shift = _fit(xy[f, others], reference[others], rigid)
            placed = xy[f] @ rotation.T + shift  # (K, 2) in the reference's frame
            kept = sum(float(np.linalg.norm(placed[k] - reference[k])) for k in pair)
            swapped = sum(float(np.linalg.norm(placed[k] - reference[b if k == a else a])) for k in pair)
            if swapped < kept and kept - swapped >= min_margin * separation:
                suspects.append(SuspectedSwap(f, frame_source(dataset, f), names[a], names[b], kept, swapped))
        pairs.append(SwapPair(names[a], names[b], separation, spread, checked, len(suspects)))
        found += suspects
    return tuple(pairs), tuple(sorted(found, key=lambda s: (-s.margin_px, s.frame)))


def duplicate_groups(
    dataset: TrainingDataset, xy: np.ndarray, tolerance: float, label_tolerance_px: float
) -> tuple[DuplicateGroup, ...]:
    """Groups of frames whose grey thumbnails differ by at most `tolerance` in every cell.

    Args:
        dataset: the dataset; its (N, H, W, C) uint8 images are compared.
        xy: float64 (N, K, 2) its keypoints as (x, y) pixels, NaN where unlabeled.
        tolerance: the largest difference in grey levels (0-255) of any thumbnail cell.
        label_tolerance_px: the group's labels agree when each keypoint is within this distance.

    Returns:
        The groups of two frames or more, ordered by their first frame.
    """
    if len(xy) < 2:
        return ()
    thumbnails = np.stack([_thumbnail(image) for image in dataset.images])  # (N, THUMBNAIL**2)
    parent = list(range(len(xy)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in cKDTree(thumbnails).query_pairs(r=tolerance, p=np.inf):
        parent[root(max(i, j))] = root(min(i, j))
    members: dict[int, list[int]] = {}
    for i in range(len(xy)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for frames in sorted(m for m in members.values() if len(m) > 1):
        first = dataset.images[frames[0]]
        identical = all(np.array_equal(first, dataset.images[f]) for f in frames[1:])
        points = xy[frames]  # (G, K, 2)
        same_missing = bool((np.isnan(points) == np.isnan(points[:1])).all())
        spread = np.linalg.norm(points[:, None] - points[None, :], axis=-1)  # (G, G, K)
        worst = float(np.nanmax(spread)) if np.isfinite(spread).any() else float("nan")
        agree = same_missing and not (worst > label_tolerance_px)
        sources = tuple(frame_source(dataset, f) for f in frames)
        groups.append(DuplicateGroup(tuple(frames), sources, identical, agree, worst))
    return tuple(groups)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A (THUMBNAIL**2,) float32 grey thumbnail of an (H, W, C) uint8 image, by area averaging."""
    grey = image.astype(np.float32).mean(axis=-1)  # (H, W)
    return np.asarray(Image.fromarray(grey).resize((THUMBNAIL, THUMBNAIL), Image.BOX)).ravel()
