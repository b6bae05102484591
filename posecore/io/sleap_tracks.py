"""SLEAP files as tracked poses: read a `.slp` file's instances with their tracks, write trajectories as `.slp`.

`read_slp_instances(path)` reads every instance of one video (predicted and user-labeled alike)
as dense per-frame arrays (`posecore.io.trajectories.Instances`): track names, point scores
(1 for user-labeled points) and instance scores. It is how tracks proofread in SLEAP, or made
by another tracker, come into posecore (tracking benchmarks, comparisons).

`write_slp(trajectories, path, video=..., skeleton=...)` writes multi-animal trajectories as
a SLEAP file of predicted instances with their tracks, through sleap-io: open it in SLEAP's GUI
to proofread the tracks (swap-risk frames are listed in the trajectories, `swap_risk`).

Coordinates need no conversion: SLEAP (format >= 1.1) and posecore both put the centre of the
top-left pixel at (0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.io.sleap_labels import load_slp_file
from posecore.io.trajectories import Instances


def read_slp_instances(
    path: str | Path, keypoint_names: Sequence[str] | None = None, n_frames: int | None = None
) -> Instances:
    """Every instance of a one-video SLEAP file, by frame, with its track.

    Args:
        path: the `.slp` file.
        keypoint_names: the K keypoints in order; default the skeleton's node order.
        n_frames: frames of the video (the arrays cover 0 .. n_frames - 1); default up to the
            last labeled frame.

    Returns:
        Instances over frames 0 .. F - 1: slot i of a frame is its i-th instance in the file;
        `track` its track name ("" without one); times are NaN (SLEAP stores frame indices).

    Raises:
        InputError: the file is missing or not a SLEAP file, holds several videos, names
            keypoints the skeleton lacks, or a frame has a track on two instances.
    """
    path = Path(path)
    labels = load_slp_file(path)
    if len(labels.videos) != 1:
        raise InputError(path, f"holds {len(labels.videos)} videos; read one video's tracks at a time")
    if not labels.skeletons:
        raise InputError(path, "the SLEAP file has no skeleton")
    names = tuple(keypoint_names) if keypoint_names is not None else tuple(labels.skeletons[0].node_names)
    frames = sorted(labels.labeled_frames, key=lambda lf: lf.frame_idx)
    last = max((lf.frame_idx for lf in frames), default=-1)
    count = last + 1 if n_frames is None else n_frames
    if last >= count:
        raise InputError(path, f"has frame {last}, but the video has {count} frames")
    slots = max((len(lf.instances) for lf in frames), default=0)
    xy = np.full((count, slots, len(names), 2), np.nan)
    score = np.full((count, slots, len(names)), np.nan)
    instance_score = np.full((count, slots), np.nan)
    track = np.full((count, slots), "", dtype=object)
    for lf in frames:
        seen: set[str] = set()
        for i, instance in enumerate(lf.instances):
            missing = [name for name in names if name not in instance.skeleton.node_names]
            if missing:
                raise InputError(path, f"keypoints {missing} are not in the skeleton", f"frame {lf.frame_idx}")
            order = [instance.skeleton.node_names.index(name) for name in names]
            values = np.asarray(instance.numpy(scores=True), dtype=np.float64)  # (K, 3) for predictions
            if values.shape[1] == 2:  # a user instance: its points are certain
                values = np.concatenate([values, np.ones((len(values), 1))], axis=1)
            xy[lf.frame_idx, i], score[lf.frame_idx, i] = values[order, :2], values[order, 2]
            instance_score[lf.frame_idx, i] = float(getattr(instance, "score", 1.0))
            name = "" if instance.track is None else str(instance.track.name)
            if name and name in seen:
                raise InputError(path, f"track {name!r} is on two instances", f"frame {lf.frame_idx}")
            seen.add(name)
            track[lf.frame_idx, i] = name
    score[~np.isfinite(xy).all(axis=-1)] = np.nan
    no_risk = np.zeros((count, slots), dtype=bool)
    return Instances(np.arange(count), np.full(count, np.nan), xy, score, instance_score, track, no_risk, names)


def write_slp(
    trajectories: pd.DataFrame | Any,
    path: str | Path,
    *,
    video: str | Path,
    skeleton: Sequence[tuple[str, str]] = (),
    keypoint_names: Sequence[str] | None = None,
    video_shape: tuple[int, int, int, int] | None = None,
) -> None:
    """Write one video's multi-animal trajectories as a SLEAP file of tracked predicted instances.

    Args:
        trajectories: the video's rows (`MULTI_ANIMAL_SCHEMA` or single-animal `SCHEMA`).
        path: the `.slp` file, written atomically.
        video: the video file the trajectories are of (SLEAP opens it beside the poses).
        skeleton: edges as pairs of keypoint names.
        keypoint_names: the K keypoints; default the table's order.
        video_shape: (frames, height, width, channels) of the video, so SLEAP need not open it
            to know; None leaves it to SLEAP.
    """
    import sleap_io

    found = Instances.from_table(trajectories, keypoint_names)
    nodes = sleap_io.Skeleton(list(found.keypoint_names), edges=[list(edge) for edge in skeleton])  # by name
    sleap_video = sleap_io.Video(filename=str(video), open_backend=False)
    if video_shape is not None:
        sleap_video.backend_metadata["shape"] = list(video_shape)
    tracks: dict[str, Any] = {}
    labeled_frames = []
    present = found.present
    for f, frame in enumerate(found.frames):
        instances = []
        for i in np.flatnonzero(present[f]):
            name = str(found.track[f, i]) or f"instance_{i}"
            if name not in tracks:
                tracks[name] = sleap_io.Track(name)
            score = found.instance_score[f, i]
            instances.append(
                sleap_io.PredictedInstance.from_numpy(
                    found.xy[f, i],
                    skeleton=nodes,
                    point_scores=np.nan_to_num(found.score[f, i], nan=0.0),
                    score=float(score) if np.isfinite(score) else 0.0,
                    track=tracks[name],
                )
            )
        if instances:
            labeled_frames.append(sleap_io.LabeledFrame(video=sleap_video, frame_idx=int(frame), instances=instances))
    labels = sleap_io.Labels(
        labeled_frames=labeled_frames, skeletons=[nodes], videos=[sleap_video], tracks=list(tracks.values())
    )
    with atomic_path(path) as tmp:
        sleap_io.save_slp(labels, str(tmp), verbose=False)
