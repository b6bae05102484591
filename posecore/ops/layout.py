"""The layout prior at decoding: each pair of keypoints keeps to the offsets the training labels showed.

For every pair of keypoints labeled together in at least `MIN_FRAMES` training frames, the
labels give the range of their offset along x and along y, widened on each side by `WIDEN` / n
of its width for the n frames it was seen in (`offset_ranges`, stored in the model file as
`ModelMeta.offset_ranges`). A frame's peaks break a pair's range when their offset falls outside
it by more than one map cell. When a frame's peaks break any range, its keypoints move to other
local maxima of their maps (the `CANDIDATES` highest, `posecore.ops.multipeak.find_peaks_multi`),
one keypoint at a time or two at once (two paws that took each other's places, where moving
either alone breaks as many ranges as it mends): each time the move that raises the frame's
score most, the sum of the chosen maxima's values minus `WEIGHT` for every broken range, until
no move raises it (each move raises it, so the search ends). A moved keypoint takes the score of
its new maximum, so a low score still says it was hard to see.

Why: on lp-mirror-mouse (a head-fixed mouse filmed with a mirror, so one frame shows a side view
above a bottom view) the models' largest errors were keypoints found on the wrong paw: the left
front paw at the right front paw, in one view or in both, with high scores, on training frames
too. The labels say what the maps cannot: a paw's x is the same in both views give or take a
few pixels, and in the bottom view the left paws lie 23-89 px above the right ones. The wrong
paw's peak breaks such a range; the right paw's map usually has a second maximum at the right
place, which keeps every range.

The prior follows the single-animal prior (`posecore.ops.single_animal`), which moves peaks that
lie off the animal altogether: moving one keypoint at a time cannot move them all. For an animal
that moves and turns freely (dlc-openfield's mouse seen from above) the ranges are as wide as the
animal in every direction, and it changes nothing there. What it cannot fix: a pose that the
training labels never showed (a correct peak can then be moved when two or more ranges break),
and keypoints whose ranges hold whichever candidate is taken.
"""

from __future__ import annotations

import numpy as np
import torch

from posecore.ops.multipeak import find_peaks_multi

MIN_FRAMES = 10
"""A pair of keypoints gets a range only when labeled together in at least this many training frames."""

WIDEN = 7.0
"""A range seen in n frames is widened on each side by WIDEN / n of its width (10% at 70 frames)."""

WEIGHT = 0.5
"""What one broken range costs, in confidence-map score."""

CANDIDATES = 8
"""Local maxima per map that a keypoint can move to."""


def offset_ranges(keypoints: np.ndarray) -> tuple[tuple[int, int, float, float, float, float], ...]:
    """The range every pair's offset may take: rows (i, j, dx_min, dx_max, dy_min, dy_max).

    The labels' smallest and largest offset, widened on each side by `WIDEN` / n of the range's
    width, n the frames that label both: a range seen in few frames is narrower than the
    animal's, and new frames fall outside it more often (a sample of n leaves each side with
    about 1 / (n + 1) of the poses beyond it).

    Args:
        keypoints: (N, K, 2) labels as (x, y) in pixels, NaN where not labeled.

    Returns:
        One row per pair i < j labeled together in at least `MIN_FRAMES` frames, from the
        x_i - x_j and y_i - y_j of those frames; () when there is none (the prior is then off).
    """
    points = np.asarray(keypoints, dtype=np.float64)  # (N, K, 2)
    offsets = points[:, :, None] - points[:, None, :]  # (N, K, K, 2): keypoint i minus keypoint j
    together = np.isfinite(offsets).all(axis=-1).sum(axis=0)  # (K, K) frames with both labeled
    rows = []
    for i, j in zip(*np.triu_indices(points.shape[1], k=1), strict=True):
        if together[i, j] >= MIN_FRAMES:
            low, high = np.nanmin(offsets[:, i, j], axis=0), np.nanmax(offsets[:, i, j], axis=0)  # (2,) x, y
            margin = (high - low) * WIDEN / together[i, j]
            (x0, y0), (x1, y1) = low - margin, high + margin
            rows.append((int(i), int(j), float(x0), float(x1), float(y0), float(y1)))
    return tuple(rows)


def _bounds(
    ranges: tuple[tuple[int, int, float, float, float, float], ...], k: int, stride: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, K, 2) lowest and highest allowed x_i - x_j, y_i - y_j in map cells, one cell wider; +-inf where free."""
    rows = torch.tensor(ranges, dtype=torch.float64)  # (P, 6)
    i, j = rows[:, 0].long(), rows[:, 1].long()
    cells = (rows[:, 2:].view(-1, 2, 2) / stride).float()  # (P, axis, [min, max])
    low = torch.full((k, k, 2), -torch.inf, dtype=torch.float32)
    high = torch.full((k, k, 2), torch.inf, dtype=torch.float32)
    low[i, j], high[i, j] = cells[..., 0] - 1.0, cells[..., 1] + 1.0  # a peak's cell is a cell wide
    low[j, i], high[j, i] = -high[i, j], -low[i, j]  # the offset of j minus i
    return low.to(device), high.to(device)


def _broken(xy: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """(B, K, K) whether each pair's offset is outside its range, for xy (B, K, 2); NaN breaks nothing."""
    offset = xy[:, :, None] - xy[:, None, :]  # (B, K, K, 2)
    return ((offset < low) | (offset > high)).any(dim=-1)


def peaks_in_layout(
    maps: torch.Tensor,
    peaks: torch.Tensor,
    ranges: tuple[tuple[int, int, float, float, float, float], ...],
    stride: float,
) -> torch.Tensor:
    """Move keypoints until the peaks keep the labels' offset ranges as well as the maps allow (module docstring).

    Args:
        maps: confidence maps (B, K, H, W) the peaks came from.
        peaks: (B, K, 3) as (x, y, score) in map cells.
        ranges: rows from `offset_ranges`, in image pixels; () leaves `peaks` as they are.
        stride: image pixels per map cell.

    Returns:
        (B, K, 3) float32 peaks, on the same device.
    """
    k = peaks.shape[1]
    if not ranges or k < 2:
        return peaks
    low, high = _bounds(ranges, k, stride, peaks.device)  # (K, K, 2) each
    todo = _broken(peaks[..., :2], low, high).flatten(1).any(dim=1)  # (B,) frames that break a range
    if not bool(todo.any()):
        return peaks
    frames = todo.nonzero().squeeze(1)
    candidates = find_peaks_multi(maps[frames], CANDIDATES, threshold=0.0)  # (F, K, M, 3), highest first
    n, m = len(frames), candidates.shape[2]
    xy, score = candidates[..., :2], candidates[..., 2]  # (F, K, M, 2), (F, K, M)
    usable = score.isfinite()  # (F, K, M)
    # Whether candidate a of keypoint i and candidate b of keypoint j break their range: (F, K, M, K, M).
    offset = xy[:, :, :, None, None] - xy[:, None, None]  # (F, K, M, K, M, 2)
    both_break = ((offset < low[:, None, :, None]) | (offset > high[:, None, :, None])).any(dim=-1).float()
    pair_usable = (
        usable[:, :, :, None, None]
        & usable[:, None, None]
        & ~torch.eye(k, dtype=torch.bool, device=peaks.device)[:, None, :, None]
    )
    chosen = peaks[frames].float().clone()  # (F, K, 3)
    rows = torch.arange(n, device=peaks.device)
    for _ in range(4 * k):  # each move raises the frame's score; this only bounds a pathological case
        now = _broken(chosen[..., :2], low, high).float()  # (F, K, K) the ranges broken now
        broken = now.sum(dim=-1)  # (F, K) per keypoint
        # Whether each candidate breaks its range with each keypoint where that keypoint is now: (F, K, M, K).
        offset = xy[:, :, :, None] - chosen[:, None, None, :, :2]  # (F, K, M, K, 2)
        would = ((offset < low[None, :, None]) | (offset > high[None, :, None])).any(dim=-1).float()
        would_sum = would.sum(dim=-1)  # (F, K, M)
        raised = score - chosen[:, :, None, 2].nan_to_num(0.0)  # (F, K, M) score gained by each candidate
        # One keypoint i to its candidate a.
        single = torch.where(usable, raised - WEIGHT * (would_sum - broken[..., None]), -torch.inf).flatten(1)
        # Two keypoints at once, i to a and j to b (two paws that took each other's places): the
        # ranges broken by either of them, before and after.
        before = broken[:, :, None, None, None] + broken[:, None, None, :, None] - now[:, :, None, :, None]
        after = (
            (would_sum[:, :, :, None, None] - would[..., None])  # i at a with all but j
            + (would_sum[:, None, None] - would.permute(0, 3, 1, 2)[:, :, None])  # j at b with all but i
            + both_break
        )
        gain = raised[:, :, :, None, None] + raised[:, None, None] - WEIGHT * (after - before)
        double = torch.where(pair_usable, gain, -torch.inf).flatten(1)  # (F, K * M * K * M)
        single_gain, single_best = single.max(dim=1)  # (F,)
        double_gain, double_best = double.max(dim=1)
        moves = torch.maximum(single_gain, double_gain) > 1e-6
        if not bool(moves.any()):
            break
        alone = single_gain >= double_gain  # a single move writes its keypoint twice
        i = torch.where(alone, single_best // m, double_best // (m * k * m))
        a = torch.where(alone, single_best % m, double_best // (k * m) % m)
        j = torch.where(alone, i, double_best // m % k)
        b = torch.where(alone, a, double_best % m)
        for keypoint, candidate in ((i, a), (j, b)):
            chosen[rows, keypoint] = torch.where(
                moves[:, None], candidates[rows, keypoint, candidate], chosen[rows, keypoint]
            )
    out = peaks.float().clone()
    out[frames] = chosen
    return out
