"""The single-animal prior at decoding: every keypoint lies on the one animal, near the others.

Each map's global maximum is its keypoint (`posecore.ops.peaks.find_peaks`) unless the frame's
peaks lie farther apart than the animal ever was in the training labels (`label_extent`, stored
in the model file as `ModelMeta.extent_px`, times a margin: the `reach`). Then the animal is
placed where the maps agree most: each keypoint's peak in turn is a candidate position, scored
by the sum over all keypoints of the best local maximum within `reach` of it
(`posecore.ops.multipeak.find_peaks_multi`); the best-scoring position wins, and every peak
farther than `reach` from it is replaced by its map's best local maximum within `reach`, with
that maximum's own score, so a low score still says the keypoint was hard to see. A map with no
local maximum there keeps its global maximum.

Why a vote and not the median of the peaks: on dlc-openfield a model put the snout and both ears
of a mouse sitting in one corner of the arena into the empty corner across from it, and only the
tail base on the mouse; the median went with the three and would have moved the tail base too.
The vote weighs the tail base's strong peak and the head maps' slightly lower maxima on the
mouse against three near-equal maxima in the empty corner and nothing for the tail base there.

What it fixes: a peak on a part of the scene that looks like the keypoint (an arena corner taken
for an ear), far from the animal. What it cannot fix: a peak on the animal at the wrong keypoint
(the left paw for the right), or one off the animal by less than the reach.
"""

from __future__ import annotations

import numpy as np
import torch

from posecore.ops.multipeak import find_peaks_multi

MARGIN = 1.25
"""The reach is this times the largest extent of the animal in the training labels."""

CANDIDATES = 8
"""Local maxima per map weighed when the peaks lie too far apart."""


def label_extent(keypoints: np.ndarray) -> float:
    """The animal's largest extent in the labels: the longest distance between two keypoints of one frame.

    Args:
        keypoints: (N, K, 2) labels as (x, y), NaN where not labeled.

    Returns:
        The distance in the labels' units; 0.0 when no frame has two labeled keypoints (the
        prior is then off).
    """
    points = np.asarray(keypoints, dtype=np.float64)  # (N, K, 2)
    distances = np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)  # (N, K, K), NaN if unlabeled
    return float(np.nanmax(distances, initial=0.0))


def peaks_on_the_animal(maps: torch.Tensor, peaks: torch.Tensor, reach: float) -> torch.Tensor:
    """Move the peaks that lie off the animal onto it (module docstring).

    Args:
        maps: confidence maps (B, K, H, W) the peaks came from.
        peaks: (B, K, 3) as (x, y, score) in map cells, from `find_peaks(maps)`.
        reach: the longest distance between two keypoints of the animal, in map cells; 0
            (unknown) leaves `peaks` as they are, as do fewer than three keypoints (two peaks
            apart cannot say which one is off).

    Returns:
        (B, K, 3) float32 peaks, on the same device.
    """
    b, k = peaks.shape[:2]
    if reach <= 0 or k < 3:
        return peaks
    xy = peaks[..., :2]  # (B, K, 2)
    apart = (xy[:, :, None] - xy[:, None, :]).norm(dim=-1) > reach  # (B, K, K); NaN compares False
    if not bool(apart.any()):
        return peaks
    candidates = find_peaks_multi(maps, CANDIDATES, threshold=0.0)  # (B, K, M, 3), highest first
    # Distance of every candidate to every position (a keypoint's peak): (B, positions K, keypoints K, M).
    near = (candidates[:, None, :, :, :2] - xy[:, :, None, None, :]).norm(dim=-1) <= reach
    score = torch.where(near, candidates[:, None, :, :, 2], -torch.inf)  # (B, K, K, M)
    best_score, best = score.max(dim=-1)  # (B, K, K): per position, each keypoint's best maximum near it
    found = best_score > -torch.inf  # (B, K, K): a maximum within reach
    support = torch.where(found, best_score, 0.0).sum(dim=-1)  # (B, K)
    support = torch.where(xy.isfinite().all(dim=-1), support, -torch.inf)  # a missing peak is no position
    position = support.argmax(dim=-1)  # (B,), the keypoint whose peak places the animal
    rows = torch.arange(b, device=peaks.device)
    best, found, off = best[rows, position], found[rows, position], apart[rows, position]  # (B, K) each
    chosen = candidates.gather(2, best[..., None, None].expand(b, k, 1, 3)).squeeze(2)  # (B, K, 3)
    return torch.where((off & found).unsqueeze(-1), chosen, peaks)
