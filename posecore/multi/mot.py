"""Tracking accuracy: CLEAR MOT (MOTA, identity switches) and IDF1, as the `motmetrics` package computes them.

Each frame gives the labeled animals' identities, the tracker's identities and a distance
between every pair, NaN where the two cannot be the same animal (too far apart, or no
keypoint in common). `pose_distances` builds it for poses: 1 - OKS, NaN below `min_oks`.

Notes:
    CLEAR MOT (Bernardin and Stiefelhagen 2008), per frame: a labeled animal keeps the track it
    was matched to before while their distance is finite; the others are matched by a minimum
    cost assignment that first maximises the number of matches; a labeled animal matched to
    another track than the last one it was matched to (in any earlier frame) is an identity
    switch. MOTA = 1 - (misses + false positives + switches) / labeled animals.
    IDF1 (Ristani et al. 2016) matches whole trajectories: each labeled identity to at most one
    track identity, maximising the frames in which the pair is matchable (finite distance);
    IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.multi.oks import SLEAP_SIGMA, oks_matrix


@dataclass(frozen=True)
class FrameMatches:
    """One frame for the tracking metrics.

    Attributes:
        truth: ids of the labeled animals (G).
        tracks: ids the tracker gave (H).
        distances: float (G, H), NaN where a pair cannot match.
    """

    truth: Sequence[Hashable]
    tracks: Sequence[Hashable]
    distances: np.ndarray


@dataclass(frozen=True)
class TrackingScores:
    """CLEAR MOT and identity measures over a video.

    Attributes:
        mota: 1 - (misses + false_positives + switches) / n_truth.
        idf1: identity F1 score.
        switches: identity switches.
        misses: labeled animals matched to no track in their frame.
        false_positives: track instances matched to no labeled animal.
        matches: matched pairs (switches included).
        n_truth: labeled animals over all frames.
        idtp: frames of matched identities (identity true positives).
        idfp: identity false positives.
        idfn: identity false negatives.
    """

    mota: float
    idf1: float
    switches: int
    misses: int
    false_positives: int
    matches: int
    n_truth: int
    idtp: int
    idfp: int
    idfn: int


def tracking_scores(frames: Sequence[FrameMatches]) -> TrackingScores:
    """MOTA, IDF1 and identity switches over the frames of a video, in order (see the module's Notes)."""
    last: dict[Hashable, Hashable] = {}  # labeled id -> track id of its last match
    switches = misses = false_positives = matches = n_truth = 0
    truth_frames: dict[Hashable, int] = {}
    track_frames: dict[Hashable, int] = {}
    together: dict[tuple[Hashable, Hashable], int] = {}
    for frame in frames:
        truth, tracks = list(frame.truth), list(frame.tracks)
        distances = np.asarray(frame.distances, dtype=np.float64).reshape(len(truth), len(tracks)).copy()
        n_truth += len(truth)
        for o in truth:
            truth_frames[o] = truth_frames.get(o, 0) + 1
        for h in tracks:
            track_frames[h] = track_frames.get(h, 0) + 1
        for i, j in zip(*np.nonzero(np.isfinite(distances)), strict=True):
            together[truth[i], tracks[j]] = together.get((truth[i], tracks[j]), 0) + 1
        used_truth, used_tracks = np.zeros(len(truth), bool), np.zeros(len(tracks), bool)
        for i, o in enumerate(truth):  # 1. established pairs carry on
            j = next((j for j, h in enumerate(tracks) if not used_tracks[j] and o in last and h == last[o]), None)
            if j is not None and np.isfinite(distances[i, j]):
                used_truth[i] = used_tracks[j] = True
                matches += 1
        distances[used_truth] = np.nan
        distances[:, used_tracks] = np.nan
        for i, j in _assign(distances):  # 2. the rest, by minimum cost
            o, h = truth[i], tracks[j]
            switches += int(o in last and last[o] != h)
            last[o] = h
            used_truth[i] = used_tracks[j] = True
            matches += 1
        misses += int((~used_truth).sum())
        false_positives += int((~used_tracks).sum())
    mota = 1.0 - (misses + false_positives + switches) / n_truth if n_truth else np.nan
    idtp, idfp, idfn = _identity_counts(truth_frames, track_frames, together)
    idf1 = 2 * idtp / (2 * idtp + idfp + idfn) if idtp + idfp + idfn else np.nan
    return TrackingScores(mota, idf1, switches, misses, false_positives, matches, n_truth, idtp, idfp, idfn)


def _assign(distances: np.ndarray) -> list[tuple[int, int]]:
    """Minimum cost pairs among finite `distances`, the most pairs first (NaN: no pair)."""
    finite = np.isfinite(distances)
    if not finite.any():
        return []
    costs = np.where(finite, distances, 0.0)
    big = (np.abs(costs).sum() + 1.0) * max(1, min(distances.shape))  # dearer than any set of real pairs
    rows, cols = linear_sum_assignment(np.where(finite, costs, big))
    return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True) if finite[i, j]]


def _identity_counts(
    truth_frames: dict[Hashable, int], track_frames: dict[Hashable, int], together: dict[tuple[Hashable, Hashable], int]
) -> tuple[int, int, int]:
    """IDTP, IDFP, IDFN of the global one-to-one matching of labeled identities to track identities."""
    truth_ids, track_ids = list(truth_frames), list(track_frames)
    n, m = len(truth_ids), len(track_ids)
    if n + m == 0:
        return 0, 0, 0
    # Rows: labeled ids then one dummy per track; columns: tracks then one dummy per labeled id.
    fn = np.zeros((n + m, m + n))
    fp = np.zeros((n + m, m + n))
    for r, o in enumerate(truth_ids):
        fn[r, :m] = truth_frames[o]
        fn[r, m + r] = truth_frames[o]  # o matched to nothing: all its frames are missed
        fn[r, m:][np.arange(n) != r] = np.inf
    for c, h in enumerate(track_ids):
        fp[:n, c] = track_frames[h]
        fp[n + c, c] = track_frames[h]  # h matched to nothing: all its frames are false
        fp[n:, c][np.arange(m) != c] = np.inf
    for (o, h), count in together.items():
        r, c = truth_ids.index(o), track_ids.index(h)
        fn[r, c] -= count
        fp[r, c] -= count
    rows, cols = linear_sum_assignment(fn + fp)
    idfn, idfp = int(fn[rows, cols].sum()), int(fp[rows, cols].sum())
    return sum(truth_frames.values()) - idfn, idfp, idfn


def pose_distances(
    truth: np.ndarray, tracked: np.ndarray, sigma: float = SLEAP_SIGMA, min_oks: float = 0.5
) -> np.ndarray:
    """Distances between labeled and tracked poses of one frame for `tracking_scores`: 1 - OKS, NaN below `min_oks`.

    Args:
        truth: (G, K, 2) labeled poses.
        tracked: (H, K, 2) tracked poses.
        sigma: OKS standard deviation per keypoint.
        min_oks: pairs less similar than this cannot be the same animal.

    Returns:
        float (G, H).
    """
    if not len(truth) or not len(tracked):
        return np.zeros((len(truth), len(tracked)))
    similarity = oks_matrix(truth, tracked, sigma)
    return np.where(similarity >= min_oks, 1.0 - similarity, np.nan)
