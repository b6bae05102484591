"""Training settings decided from the labels where the config says "auto": crops and flips.

`resolve_auto(config, keypoints, image_sizes, keypoint_names, swap_pairs)` returns the config
with `crop_size`, `crop_until` and `flip` made concrete, and one `Decision` for each setting it
decided, saying why in words (the training log, the training summary and the QC report show
them). A number or true/false in the config is kept as it is. `max_epochs: auto` stays "auto":
it means the time budget, which `posecore.train.module.PoseModule` follows.

The rules (`decide_crop`, `decide_flip`), and why they choose on the two real datasets what
`benchmarks/accuracy.py`'s per-dataset recipes chose by hand: docs/training.md, "Settings
decided from the labels".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from posecore.train.config import TrainConfig

CROP_PER_EXTENT = 1.5
"""Crop side per pixel of the animal's extent."""
CROP_MULTIPLE = 64
"""Crop sides are multiples of this (the models' input multiples divide it)."""
MIN_CROP = 128
"""Smallest crop side decided; frames that cannot spare one at half their pixels train whole."""
CROP_SAVING = 2.0
"""Crops only where a frame holds at least this many crops' pixels (each step at least this much cheaper)."""
SPANNING_CROP_UNTIL = 0.6
"""The fraction of the run trained on crops when the animal spans more than a crop (mirror-mouse's recipe)."""
EXTENT_PERCENTILE = 95
"""Percentile of the training frames' extents taken as the animal's (one mislabeled frame does not count)."""
FIXED_DIRECTION = 0.9
"""Mean resultant length of a keypoint pair's direction above which the pair always points one way."""
MIRROR_ANGLE_DEG = 45.0
"""How far a mirrored pair must point from the labels' direction for a flip to show an unseen pose."""
MIN_PAIR_FRAMES = 5
"""Frames a pair must be labeled in together to say which way it points."""
LATERAL_WORDS = {"left", "right", "l", "r", "lh", "rh", "lf", "rf", "lt", "rt"}
"""Words of a keypoint name that make it one side of the animal."""


@dataclass(frozen=True)
class Decision:
    """One setting decided from the labels.

    Attributes:
        key: the train config key ("crop_size", "crop_until" or "flip").
        value: the value decided.
        reason: why, in a sentence a user can check against the labels.
    """

    key: str
    value: Any
    reason: str

    def line(self) -> str:
        """The decision as one line of a log: `train.<key>: <value> (auto): <reason>`."""
        return f"train.{self.key}: {self.value} (auto): {self.reason}"


def resolve_auto(
    config: TrainConfig,
    keypoints: np.ndarray,
    image_sizes: np.ndarray,
    keypoint_names: Sequence[str],
    swap_pairs: Sequence[tuple[int, int]],
) -> tuple[TrainConfig, tuple[Decision, ...]]:
    """The config with every "auto" crop and flip setting decided from the training labels.

    Args:
        config: the training config; its numbers and true/false are kept.
        keypoints: (N, K, 2) training labels as (x, y) pixels, NaN where not labeled.
        image_sizes: (N, 2) each training frame's (height, width).
        keypoint_names: the K names.
        swap_pairs: left/right keypoint index pairs.

    Returns:
        The concrete config (max_epochs may stay "auto", the time budget) and the decisions made.
    """
    decisions: list[Decision] = []
    crop_size, crop_until = config.crop_size, config.crop_until
    if crop_size == "auto" or crop_until == "auto":
        size, until, reason = decide_crop(keypoints, image_sizes, None if crop_size == "auto" else int(crop_size))
        if crop_size == "auto":
            crop_size = size
            decisions.append(Decision("crop_size", size, reason))
        if crop_until == "auto":
            crop_until = until
            decisions.append(Decision("crop_until", until, reason))
    flip = config.flip
    if flip == "auto":
        flip, reason = decide_flip(keypoints, keypoint_names, swap_pairs)
        decisions.append(Decision("flip", flip, reason))
    return replace(config, crop_size=crop_size, crop_until=crop_until, flip=flip), tuple(decisions)


def frame_extents(keypoints: np.ndarray) -> np.ndarray:
    """Each frame's extent: the longest distance between two of its labeled keypoints, (N,), NaN with fewer than two."""
    points = np.asarray(keypoints, dtype=np.float64)  # (N, K, 2)
    distances = np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)  # (N, K, K), NaN if unlabeled
    distances = distances.reshape(len(points), -1)  # (N, K * K)
    labeled = np.isfinite(distances).any(axis=1)
    extents = np.full(len(points), np.nan)
    extents[labeled] = np.nanmax(distances[labeled], axis=1)
    return extents


def decide_crop(keypoints: np.ndarray, image_sizes: np.ndarray, crop_size: int | None = None) -> tuple[int, float, str]:
    """Crop side and the fraction of the run trained on crops, from the animal's extent and the frame size.

    Args:
        keypoints: (N, K, 2) training labels, NaN where not labeled.
        image_sizes: (N, 2) the training frames' (height, width).
        crop_size: a crop side the config fixes (0: whole frames); None: decide it too.

    Returns:
        (crop_size, crop_until, reason); crop_size 0 is whole frames.
    """
    extents = frame_extents(keypoints)
    extent = float(np.nanpercentile(extents, EXTENT_PERCENTILE)) if np.isfinite(extents).any() else 0.0
    sizes = np.asarray(image_sizes, dtype=np.float64)  # (N, 2)
    height, width = (int(v) for v in np.median(sizes, axis=0))
    area = float(np.median(sizes[:, 0] * sizes[:, 1]))
    needed = CROP_MULTIPLE * math.ceil(max(CROP_PER_EXTENT * extent, MIN_CROP) / CROP_MULTIPLE)
    affordable = CROP_MULTIPLE * math.floor(math.sqrt(area / CROP_SAVING) / CROP_MULTIPLE)
    animal = f"the animal spans up to {extent:.0f} px ({EXTENT_PERCENTILE}th percentile of the training frames)"
    frames = f"{width}x{height} frames"
    if crop_size is not None:
        if crop_size == 0:
            return 0, 1.0, "whole frames (train.crop_size is 0)"
        if needed <= crop_size:
            return crop_size, 1.0, f"{animal}: crops of {crop_size} px hold it, crops throughout"
        return crop_size, SPANNING_CROP_UNTIL, f"{animal}, more than crops of {crop_size} px hold: whole frames after"
    if needed <= affordable:
        share = area / needed**2
        return needed, 1.0, f"{animal} in {frames}: crops of {needed} px hold it, each 1/{share:.1f} of a frame"
    if affordable >= MIN_CROP:
        reason = (
            f"{animal}, more than a crop of at most half a frame holds in {frames}: crops of {affordable} px for the "
            f"first {SPANNING_CROP_UNTIL:.0%} of the run, whole frames after it (which end of the animal is which)"
        )
        return affordable, SPANNING_CROP_UNTIL, reason
    return 0, 1.0, f"{frames} are too small for crops of {MIN_CROP} px to save time: whole frames"


def lateral_keypoints(names: Sequence[str]) -> list[int]:
    """Indices of the keypoints whose name says they are one side of the animal.

    A name is split into words at non-letters and case changes ("paw1LH" -> paw, LH; "Ear_R" ->
    Ear, R); it is lateral when a word is left, right, L, R, LH, RH, LF, RF, LT or RT, or
    begins with left or right ("leftear").
    """
    lateral = []
    for k, name in enumerate(names):
        words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", name)]
        if any(w in LATERAL_WORDS or w.startswith(("left", "right")) for w in words):
            lateral.append(k)
    return lateral


def fixed_direction(keypoints: np.ndarray, swap_pairs: Sequence[tuple[int, int]]) -> tuple[int, int, float, int] | None:
    """The keypoint pair that shows an animal always facing one way, if the labels have one.

    A pair (i, j) does when its direction (from j to i) stays within a narrow cone over the
    frames that label both (mean resultant length of the unit directions >= FIXED_DIRECTION),
    and a horizontal flip, which mirrors x and swaps left/right pairs, would point it more than
    MIRROR_ANGLE_DEG away from that cone's axis. The pair with the largest such angle is
    returned: the longest (the animal's long axis rather than two nearby points).

    Returns:
        (i, j, mirrored angle in degrees, frames labeling both), or None.
    """
    points = np.asarray(keypoints, dtype=np.float64)  # (N, K, 2)
    k = points.shape[1]
    partner = list(range(k))
    for a, b in swap_pairs:
        partner[a], partner[b] = b, a
    best: tuple[float, float, int, int, int] | None = None
    for i in range(k):
        for j in range(i + 1, k):
            direction = _mean_direction(points[:, i] - points[:, j])
            mirrored = _mean_direction(points[:, partner[i]] - points[:, partner[j]])
            if direction is None or mirrored is None or direction[2] < FIXED_DIRECTION:
                continue
            flipped = np.array([-mirrored[0], mirrored[1]])  # a flip negates x
            cosine = float(np.dot(direction[:2], flipped) / (np.linalg.norm(direction[:2]) * np.linalg.norm(flipped)))
            angle = math.degrees(math.acos(min(1.0, max(-1.0, cosine))))
            if angle > MIRROR_ANGLE_DEG:
                key = (direction[3], angle, i, j, int(direction[4]))
                best = key if best is None or key[:2] > best[:2] else best
    return None if best is None else (best[2], best[3], best[1], best[4])


def _mean_direction(offsets: np.ndarray) -> tuple[float, float, float, float, int] | None:
    """Mean of the unit vectors of (N, 2) offsets: (x, y, its length R, the median distance, frames), or None."""
    lengths = np.linalg.norm(offsets, axis=-1)  # (N,), NaN where either is unlabeled
    usable = np.isfinite(lengths) & (lengths > 0)
    if usable.sum() < MIN_PAIR_FRAMES:
        return None
    mean = (offsets[usable] / lengths[usable, None]).mean(axis=0)  # (2,)
    return (
        float(mean[0]),
        float(mean[1]),
        float(np.linalg.norm(mean)),
        float(np.median(lengths[usable])),
        int(usable.sum()),
    )


def decide_flip(
    keypoints: np.ndarray, keypoint_names: Sequence[str], swap_pairs: Sequence[tuple[int, int]]
) -> tuple[bool, str]:
    """Whether horizontal flips make true new poses of this animal (module Notes), and why.

    Args:
        keypoints: (N, K, 2) training labels, NaN where not labeled.
        keypoint_names: the K names.
        swap_pairs: left/right keypoint index pairs.

    Returns:
        (flip, reason).
    """
    paired = {k for pair in swap_pairs for k in pair}
    unpaired = [keypoint_names[k] for k in lateral_keypoints(keypoint_names) if k not in paired]
    if unpaired:
        return False, (
            f"keypoint(s) {unpaired} are named as one side of the animal but are in no dataset.swap_pairs, so a flip "
            "cannot say what they become: add their pairs to turn flips on"
        )
    fixed = fixed_direction(keypoints, swap_pairs)
    if fixed is not None:
        i, j, angle, n = fixed
        return False, (
            f"{keypoint_names[j]} -> {keypoint_names[i]} points the same way in the {n} training frames that label "
            f"both, and a mirrored frame would turn it {angle:.0f} degrees: the animal always faces one way, and a "
            "flip would show a pose no label has"
        )
    pairs = f"left/right swaps from dataset.swap_pairs ({len(swap_pairs)})" if swap_pairs else "no lateral keypoints"
    return True, f"the animal faces many ways in the training labels, {pairs}: flips make true new poses"
