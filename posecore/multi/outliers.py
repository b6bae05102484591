"""Outlier frames of multi-animal trajectories: likely identity swaps first, then unsure or jumping animals.

`posecore.outliers.extract_outliers` calls these when a video's trajectories hold several
animals. A frame where the tracker flagged a likely swap (`swap_risk`) is the first to label:
severity 0.5 + 0.5 x the share of its animals flagged, so it ranks above any frame flagged for
a low score or a jump alone (their severities, from `posecore.outliers.find_outliers` run on
each animal's track where the animal is present, are halved). The machine labels are written
in multi-animal DeepLabCut's layout, one individual per track, for napari-deeplabcut.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from posecore.io.frames import image_name
from posecore.io.trajectories import Instances

SWAP = "swap_risk"


def find_multi_outliers(
    found: Instances, find_one: Callable[[np.ndarray, tuple[str, ...], np.ndarray, np.ndarray], pd.DataFrame]
) -> pd.DataFrame:
    """Every flagged frame with its reason and severity, worst first (module docstring).

    Args:
        found: one video's tracked animals.
        find_one: one animal's flagged frames from its frames (F,), keypoint names, points
            (F, K, 2) and scores (F, K): `posecore.outliers.find_outliers` with its config, which
            `posecore.outliers.extract_outliers` hands over (so that this module needs not import it).

    Returns:
        The columns of `posecore.outliers.find_outliers`, plus `n_animals` and `n_swap_risk`
        (animals present, and flagged, in the frame); `worst_keypoint` and `jump_keypoint`
        name the track too ("track_1:snout").
    """
    present = found.present  # (F, I)
    rows: dict[int, dict] = {}
    for i in range(present.shape[1]):
        name = next((str(t) for t in found.track[:, i] if t), f"instance_{i}")
        score = np.where(present[:, i, None], found.score[:, i], 1.0)  # absent: no score to doubt
        for row in find_one(found.frames, found.keypoint_names, found.xy[:, i], score).itertuples(index=False):
            entry = row._asdict()
            entry["severity"] *= 0.5
            entry["worst_keypoint"] = f"{name}:{entry['worst_keypoint']}"
            entry["jump_keypoint"] = f"{name}:{entry['jump_keypoint']}" if entry["jump_keypoint"] else ""
            if row.frame not in rows or rows[row.frame]["severity"] < entry["severity"]:
                rows[row.frame] = entry
    flagged = (found.swap_risk & present).sum(axis=1)  # (F,)
    animals = present.sum(axis=1)
    for f in np.flatnonzero(flagged):
        frame = int(found.frames[f])
        severity = 0.5 + 0.5 * flagged[f] / max(animals[f], 1)
        base = rows.get(frame)
        reason = SWAP if base is None else f"{SWAP}+{base['reason']}"
        rows[frame] = {**(base or _blank(frame)), "reason": reason, "severity": severity}
    table = pd.DataFrame(list(rows.values()), columns=[*_blank(0)])
    index = {int(frame): f for f, frame in enumerate(found.frames)}
    table["n_animals"] = [int(animals[index[int(frame)]]) for frame in table["frame"]]
    table["n_swap_risk"] = [int(flagged[index[int(frame)]]) for frame in table["frame"]]
    return table.sort_values(["severity", "frame"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _blank(frame: int) -> dict:
    """A flagged frame's row before any reason is known (the columns of `find_outliers`)."""
    return {
        "frame": frame,
        "reason": "",
        "severity": 0.0,
        "min_score": np.nan,
        "mean_score": np.nan,
        "worst_keypoint": "",
        "max_jump_px": np.nan,
        "jump_keypoint": "",
    }


def individual_names(found: Instances) -> list[str]:
    """Each instance slot's track name (the first given), `instance_<i>` for a slot never tracked."""
    return [next((str(t) for t in found.track[:, i] if t), f"instance_{i}") for i in range(found.xy.shape[1])]


def multi_machine_labels(
    found: Instances, frames: np.ndarray, *, scorer: str, video_name: str, n_video_frames: int, nan_below: float
) -> pd.DataFrame:
    """The model's tracked animals on `frames` in multi-animal DeepLabCut's layout (a machinelabels table).

    Returns:
        Rows indexed by ("labeled-data", video_name, image name), in frame order; float64
        columns (scorer, individuals, bodyparts, coords) with coords x, y and likelihood, one
        individual per track; points scoring below `nan_below`, and absent animals, are NaN.
    """
    frames = np.sort(np.asarray(frames, dtype=np.int64))
    rows = frames - found.frames[0]
    xy = found.xy[rows].copy()  # (N, I, K, 2)
    score = found.score[rows].copy()  # (N, I, K)
    drop = ~(score >= nan_below) | np.isnan(xy).any(axis=-1)
    xy[drop], score[drop] = np.nan, np.nan
    values = np.concatenate([xy, score[..., None]], axis=-1).reshape(len(frames), -1)  # (N, I * K * 3)
    columns = pd.MultiIndex.from_product(
        [[scorer], individual_names(found), list(found.keypoint_names), ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", video_name, image_name(int(f), n_video_frames)) for f in frames]
    )
    return pd.DataFrame(values, index=index, columns=columns)
