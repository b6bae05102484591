"""Pose accuracy of several animals per frame: object keypoint similarity (OKS) and its mean average precision.

`oks_matrix(truth, predicted, sigma)` is COCO's keypoint similarity between every labeled and
every predicted animal of a frame; `pose_map(...)` is COCO's mAP over OKS thresholds 0.50 to
0.95, computed as pycocotools computes it (tested against it). The sigma is the one knob that
differs between tools: SLEAP uses 0.025 for every keypoint (`SLEAP_SIGMA`), DeepLabCut 0.1
(`DLC_SIGMA`; 0.15 with a 10-pixel box margin for its parenting-mice benchmark).

Notes:
    OKS of a labeled animal g and a prediction p is the mean over g's labeled keypoints of
    exp(-d^2 / (2 * area * (2 * sigma)^2)), d the distance in pixels and area that of g's
    keypoints' bounding box (SLEAP's and DeepLabCut's scale; `margin` pixels are added on
    every side, as DeepLabCut's `oks_bbox_margin`). A keypoint the prediction lacks counts 0.
    Matching follows pycocotools: per frame and threshold, predictions in descending score
    take the unmatched labeled animal of highest OKS at or above the threshold; precision over
    all frames' predictions is made non-increasing and read at 101 recall points; AP is its
    mean, mAP the mean AP over the thresholds. Labeled animals with no labeled keypoint are
    left out (pycocotools ignores them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SLEAP_SIGMA = 0.025
"""SLEAP's OKS standard deviation for every keypoint (sleap-nn `compute_oks`)."""

DLC_SIGMA = 0.1
"""DeepLabCut's default OKS sigma (`deeplabcut.core.metrics`, its tri-mouse, marmoset and fish benchmarks)."""

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_area(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Area of each animal's keypoint bounding box, grown by `margin` on every side.

    Args:
        points: (N, K, 2) (x, y), NaN where not labeled.
        margin: pixels added on each side of the box.

    Returns:
        float64 (N,); NaN for an animal with no labeled keypoint.
    """
    points = np.asarray(points, dtype=np.float64)
    labeled = np.isfinite(points).all(axis=-1).any(axis=-1)  # (N,)
    safe = np.where(labeled[:, None, None], points, 0.0)
    with np.errstate(invalid="ignore"):
        extent = np.nanmax(safe, axis=1) - np.nanmin(safe, axis=1) + 2 * margin  # (N, 2)
    return np.where(labeled, extent.prod(axis=-1), np.nan)


def oks_matrix(
    truth: np.ndarray,
    predicted: np.ndarray,
    sigma: float | np.ndarray = SLEAP_SIGMA,
    area: np.ndarray | None = None,
    margin: float = 0.0,
) -> np.ndarray:
    """Object keypoint similarity of every labeled animal with every predicted one, in one frame.

    Args:
        truth: (G, K, 2) labeled (x, y), NaN where not labeled.
        predicted: (P, K, 2) predicted (x, y), NaN where not predicted.
        sigma: per-keypoint standard deviation, a number or (K,).
        area: (G,) the scale of each labeled animal; default its keypoints' box area (`box_area`).
        margin: with the default area, pixels added on each side of the box.

    Returns:
        float64 (G, P) in [0, 1]; NaN rows for labeled animals with no labeled keypoint.
    """
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, *np.shape(truth)[-2:])
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, *truth.shape[-2:])
    k = truth.shape[1]
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (k,))
    area = box_area(truth, margin) if area is None else np.asarray(area, dtype=np.float64)
    distance2 = ((truth[:, None] - predicted[None]) ** 2).sum(axis=-1)  # (G, P, K), NaN where either is missing
    scale = (2 * sigmas) ** 2 * (area[:, None, None] + np.spacing(1)) * 2  # (G, 1, K)
    similarity = np.exp(-distance2 / scale)  # (G, P, K)
    labeled = np.isfinite(truth).all(axis=-1)  # (G, K)
    similarity = np.where(labeled[:, None] & np.isfinite(similarity), similarity, 0.0)  # missing prediction: 0
    n_labeled = labeled.sum(axis=-1)[:, None]  # (G, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_labeled > 0, similarity.sum(axis=-1) / n_labeled, np.nan)


@dataclass(frozen=True)
class PoseAP:
    """Mean average precision over OKS thresholds, with what went into it.

    Attributes:
        map: mean over thresholds of the average precision (COCO's AP).
        ap: (T,) the average precision at each threshold.
        mar: mean over thresholds of the recall with every prediction (COCO's AR).
        recall: (T,) the recall at each threshold.
        thresholds: (T,) the OKS thresholds.
        n_truth: labeled animals counted (with at least one labeled keypoint).
        n_predicted: predictions.
    """

    map: float
    ap: np.ndarray
    mar: float
    recall: np.ndarray
    thresholds: np.ndarray
    n_truth: int
    n_predicted: int


def pose_map(
    truth: Sequence[np.ndarray],
    predicted: Sequence[np.ndarray],
    scores: Sequence[np.ndarray],
    sigma: float | np.ndarray = SLEAP_SIGMA,
    margin: float = 0.0,
    thresholds: np.ndarray = OKS_THRESHOLDS,
) -> PoseAP:
    """COCO's keypoint mAP over frames (see the module's Notes).

    Args:
        truth: per frame, (G_i, K, 2) labeled animals (x, y), NaN where not labeled.
        predicted: per frame, (P_i, K, 2) predicted animals.
        scores: per frame, (P_i,) each prediction's confidence, which orders them.
        sigma: OKS standard deviation per keypoint (a number or (K,)).
        margin: pixels added on each side of the labeled box for its area.
        thresholds: OKS thresholds.

    Returns:
        The mAP, per-threshold AP and recall. With no labeled animal, everything is NaN.
    """
    if not len(truth) == len(predicted) == len(scores):
        counts = f"{len(truth)}, {len(predicted)}, {len(scores)}"
        raise ValueError(f"truth, predicted and scores need one entry per frame, got {counts}")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    all_scores, all_matched, n_truth = [], [], 0
    for frame_truth, frame_pred, frame_scores in zip(truth, predicted, scores, strict=True):
        frame_truth = np.asarray(frame_truth, dtype=np.float64)
        frame_truth = (
            frame_truth[np.isfinite(frame_truth).all(axis=-1).any(axis=-1)] if len(frame_truth) else frame_truth
        )
        frame_scores = np.asarray(frame_scores, dtype=np.float64).reshape(-1)
        order = np.argsort(-frame_scores, kind="mergesort")
        n_truth += len(frame_truth)
        if not len(order):
            continue
        similarity = (
            oks_matrix(frame_truth, np.asarray(frame_pred)[order], sigma, margin=margin)
            if len(frame_truth)
            else np.zeros((0, len(order)))
        )  # (G, P), predictions best first
        all_scores.append(frame_scores[order])
        all_matched.append(np.stack([_match(similarity, t) for t in thresholds]))  # (T, P)
    n_predicted = sum(len(s) for s in all_scores)
    if n_truth == 0:
        nan = np.full(len(thresholds), np.nan)
        return PoseAP(np.nan, nan, np.nan, nan, thresholds, 0, n_predicted)
    if n_predicted == 0:
        zero = np.zeros(len(thresholds))
        return PoseAP(0.0, zero, 0.0, zero, thresholds, n_truth, 0)
    order = np.argsort(-np.concatenate(all_scores), kind="mergesort")
    matched = np.concatenate(all_matched, axis=1)[:, order]  # (T, P_all), best score first
    ap, recall = np.zeros(len(thresholds)), np.zeros(len(thresholds))
    for t, hits in enumerate(matched):
        tp, fp = np.cumsum(hits), np.cumsum(~hits)
        rc = tp / n_truth
        pr = np.maximum.accumulate((tp / (tp + fp + np.spacing(1)))[::-1])[::-1]  # non-increasing
        found = np.searchsorted(rc, RECALL_POINTS, side="left")
        ap[t] = np.where(found < len(pr), pr[np.minimum(found, len(pr) - 1)], 0.0).mean()
        recall[t] = rc[-1]
    return PoseAP(float(ap.mean()), ap, float(recall.mean()), recall, thresholds, n_truth, n_predicted)


def _match(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Which predictions (columns, best score first) match a labeled animal at OKS >= threshold, pycocotools' way.

    Each prediction takes the unmatched labeled animal of highest OKS at or above the threshold
    (on a tie, the later one, as pycocotools' loop does).

    Returns:
        bool (P,).
    """
    n_truth, n_pred = similarity.shape
    taken = np.zeros(n_truth, dtype=bool)
    hits = np.zeros(n_pred, dtype=bool)
    limit = min(threshold, 1 - 1e-10)
    for p in range(n_pred):
        best, best_value = -1, limit
        for g in range(n_truth):
            if taken[g] or not similarity[g, p] >= best_value:
                continue
            best, best_value = g, similarity[g, p]
        if best >= 0:
            taken[best], hits[p] = True, True
    return hits
