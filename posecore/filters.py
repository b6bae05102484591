"""Optional temporal filtering of trajectories, written beside the raw values, never over them.

Each (video, instance, keypoint) series is filtered on its own, in frame order:

1. points scoring below `min_score` are treated as missing (so are NaN points);
2. gaps of missing points up to `max_gap` frames long are filled by linear interpolation
   between the points on either side; longer gaps, and gaps at the ends, stay missing (NaN);
3. the series is smoothed by a running median or a Savitzky-Golay filter of `window` frames,
   run over each stretch without missing points (stretches shorter than the window are kept
   as they are).

`filter_trajectories` adds the columns `x_filtered` and `y_filtered` to a long-format
trajectory table (docs/design.md, "Trajectories") and leaves `x`, `y` and `score` untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter

SmoothMethod = Literal["none", "median", "savgol"]


@dataclass(frozen=True)
class FilterConfig:
    """How to filter trajectories.

    Attributes:
        method: smoothing after gap filling: "none", a running "median", or "savgol" (Savitzky-Golay).
        window: smoothing window in frames, odd and at least 3.
        polyorder: Savitzky-Golay polynomial order, less than `window`.
        min_score: points scoring below it count as missing before gap filling.
        max_gap: longest run of missing frames that is filled by interpolation (0: none).
    """

    method: SmoothMethod = "median"
    window: int = 5
    polyorder: int = 2
    min_score: float = 0.1
    max_gap: int = 5

    def __post_init__(self) -> None:
        if self.method not in ("none", "median", "savgol"):
            raise ValueError(f"unknown filter method {self.method!r}; known: none, median, savgol")
        if self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"window must be odd and at least 3, got {self.window}")
        if self.method == "savgol" and not 0 <= self.polyorder < self.window:
            raise ValueError(f"polyorder must be in [0, window), got {self.polyorder} for window {self.window}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")


def interpolate_gaps(values: np.ndarray, missing: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill interior runs of missing values up to `max_gap` long by linear interpolation.

    Args:
        values: float (N,) one coordinate of one keypoint, in frame order (consecutive frames).
        missing: bool (N,) which values to treat as missing (their value is ignored).
        max_gap: longest run that is filled; longer runs and runs touching either end become NaN.

    Returns:
        float64 (N,): the kept values, filled gaps, and NaN where nothing could be filled.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    missing = np.asarray(missing, dtype=bool) | ~np.isfinite(out)
    out[missing] = np.nan
    if not missing.any() or missing.all():
        return out
    # Runs of missing values: [starts[i], ends[i]).
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))  # (N + 1,)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    good = np.flatnonzero(~missing)
    filled = np.interp(np.arange(len(out)), good, out[good])  # (N,)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if start > 0 and end < len(out) and end - start <= max_gap:
            out[start:end] = filled[start:end]
    return out


def smooth(values: np.ndarray, config: FilterConfig) -> np.ndarray:
    """Smooth a series over each stretch without NaN.

    Args:
        values: float (N,) in frame order, NaN where missing.
        config: the method, window and polynomial order.

    Returns:
        float64 (N,), NaN where `values` is; stretches shorter than the window unchanged.
    """
    out = np.asarray(values, dtype=np.float64).copy()
    if config.method == "none":
        return out
    valid = np.isfinite(out)
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))  # (N + 1,)
    for start, end in zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True):
        if end - start < config.window:
            continue
        stretch = out[start:end]
        if config.method == "median":
            out[start:end] = median_filter(stretch, size=config.window, mode="nearest")
        else:
            out[start:end] = savgol_filter(stretch, config.window, config.polyorder, mode="interp")
    return out


def filter_series(
    x: np.ndarray, y: np.ndarray, score: np.ndarray, config: FilterConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Filter one keypoint's track.

    Args:
        x: float (N,) columns in pixels, consecutive frames.
        y: float (N,) rows in pixels.
        score: float (N,) confidence of each point.
        config: the filter.

    Returns:
        (x, y) filtered, float64 (N,) each, NaN where a point stays missing.
    """
    missing = ~(np.asarray(score, dtype=np.float64) >= config.min_score)  # NaN scores count as missing
    missing |= ~np.isfinite(x) | ~np.isfinite(y)
    return tuple(smooth(interpolate_gaps(v, missing, config.max_gap), config) for v in (x, y))  # type: ignore[return-value]


def filter_trajectories(table: pd.DataFrame, config: FilterConfig) -> pd.DataFrame:
    """Add `x_filtered` and `y_filtered` to a long-format trajectory table.

    Args:
        table: rows of (frame, instance, keypoint, x, y, score), and `video` when it holds
            several videos; any row order.
        config: the filter.

    Returns:
        A copy of `table`, rows in the same order, with the two new float32 columns. Frames
        absent from a series count as missing points.
    """
    out = table.copy()
    out["x_filtered"] = np.float32(np.nan)
    out["y_filtered"] = np.float32(np.nan)
    keys = [c for c in ("video", "instance", "keypoint") if c in table.columns]
    for _, rows in table.groupby(keys, observed=True, sort=False):
        rows = rows.sort_values("frame")
        frames = rows["frame"].to_numpy()
        if len(np.unique(frames)) != len(frames):
            raise ValueError(f"a series has repeated frames; group the table by {keys} first")
        span = np.arange(frames[0], frames[-1] + 1)  # (N,) consecutive frames, gaps included
        place = frames - frames[0]
        full = {name: np.full(len(span), np.nan) for name in ("x", "y", "score")}
        for name, series in full.items():
            series[place] = rows[name].to_numpy(dtype=np.float64)
        fx, fy = filter_series(full["x"], full["y"], full["score"], config)
        out.loc[rows.index, "x_filtered"] = fx[place].astype(np.float32)
        out.loc[rows.index, "y_filtered"] = fy[place].astype(np.float32)
    return out
