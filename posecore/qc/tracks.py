"""One video's trajectories as dense arrays, and the points the archive QC flags in them.

The trajectory table is long (one row per frame, instance and keypoint); the checks here need
it as arrays over consecutive frames, where a frame without rows is a frame of missing points
(NaN), never a frame that is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Tracks:
    """One video's trajectories as dense arrays over frames 0 .. F-1 (frames without rows are NaN).

    Attributes:
        times: float64 (F,) time in seconds of each frame (NaN where no row).
        xy: float32 (F, I, K, 2) points (x, y) in pixels of the original frame.
        score: float32 (F, I, K) peak scores.
        instances: the I instance ids, ascending.
        present: bool (F,) frames that have rows.
    """

    times: np.ndarray
    xy: np.ndarray
    score: np.ndarray
    instances: tuple[int, ...]
    present: np.ndarray


def tracks_from_table(table: pd.DataFrame, keypoints: Sequence[str]) -> Tracks:
    """Dense arrays from a video's long table (`frame`, `time_s`, `instance`, `keypoint`, `x`, `y`, `score`)."""
    n_frames = int(table["frame"].max()) + 1 if len(table) else 0
    instances = tuple(int(i) for i in sorted(table["instance"].unique()))
    f = table["frame"].to_numpy(dtype=np.int64)
    i = np.searchsorted(instances, table["instance"].to_numpy())
    k = pd.Categorical(table["keypoint"], categories=list(keypoints)).codes
    xy = np.full((n_frames, len(instances), len(keypoints), 2), np.nan, dtype=np.float32)  # (F, I, K, 2)
    score = np.full((n_frames, len(instances), len(keypoints)), np.nan, dtype=np.float32)  # (F, I, K)
    xy[f, i, k, 0], xy[f, i, k, 1] = table["x"].to_numpy(), table["y"].to_numpy()
    score[f, i, k] = table["score"].to_numpy()
    times = np.full(n_frames, np.nan)
    times[f] = table["time_s"].to_numpy()
    present = np.zeros(n_frames, dtype=bool)
    present[f] = True
    return Tracks(times=times, xy=xy, score=score, instances=instances, present=present)


def flag_points(tracks: Tracks, score_threshold: float, jump_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Low and jumping points.

    Returns:
        low: bool (F, I, K), score below the threshold or missing (NaN, or no row).
        jump: bool (F, I, K), the point moved more than `jump_px` since the previous frame
            (both positions known).
    """
    low = ~(tracks.score >= score_threshold)  # NaN compares False: missing points are low
    jump = np.zeros_like(low)
    if len(low) > 1:
        step = np.hypot(*np.moveaxis(np.diff(tracks.xy, axis=0), -1, 0))  # (F - 1, I, K) px
        jump[1:] = step > jump_px  # NaN steps are not jumps
    return low, jump


def gap_lengths(low: np.ndarray) -> np.ndarray:
    """Lengths (frames) of every run of consecutive low frames of each point, from bool (F, I, K)."""
    runs = low.reshape(len(low), int(np.prod(low.shape[1:]))).T.astype(np.int8)  # (I * K, F)
    edges = np.diff(np.pad(runs, ((0, 0), (1, 1))), axis=1)  # +1 where a run starts, -1 after it ends
    return np.flatnonzero(edges.reshape(-1) == -1) - np.flatnonzero(edges.reshape(-1) == 1)  # row-major pairs


def worst_window(per_frame: np.ndarray, length: int) -> tuple[int, int]:
    """[start, stop) of the `length` consecutive frames with the largest sum of `per_frame` (F,); the earliest."""
    if not len(per_frame):
        return 0, 0
    length = max(1, min(length, len(per_frame)))
    sums = np.convolve(per_frame, np.ones(length, dtype=per_frame.dtype), mode="valid")  # (F - length + 1,)
    start = int(np.argmax(sums))
    return start, start + length
