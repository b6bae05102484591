"""posecore's trajectories as a `movement` poses dataset (xarray), for analysis in movement.

`load_poses(source, video=None)` reads one video's trajectories, from its Parquet file or from
the workflow's archive folder (`results/trajectories/<model>`, one `video=<name>/` partition
per video), and returns the dataset movement's own loaders return: variables `position`
(time, space, keypoints, individuals) and `confidence` (time, keypoints, individuals), made by
`movement.io.load_poses.from_numpy`, so movement validates it as it validates its own.

Notes:
    Why a loader of our own rather than posecore's DeepLabCut-H5 or NWB exports read by
    movement's loaders: both of those lose the frames' times (movement rebuilds them as
    index / fps from 0, which is wrong for a variable-frame-rate video and for a frame range
    that does not start at frame 0), and the NWB path holds one individual. Here the `time`
    coordinate is the trajectories' own `time_s`, a `frame` coordinate along time keeps the
    video's frame indices, each posecore instance is one individual ("animal0", "animal1", ...,
    as in posecore's DeepLabCut export), and the scores are the confidence. A point posecore
    has as NaN, or has no row for, is NaN in both variables.

    movement is an optional dependency (`pip install movement`); it is imported when a
    dataset is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posecore.errors import InputError
from posecore.io.trajectory_arrays import read_points, trajectory_files

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["load_poses"]


def load_poses(source: str | Path, video: str | None = None) -> xr.Dataset:
    """One video's trajectories as a movement poses dataset.

    Args:
        source: a trajectory Parquet file (`posecore predict`'s output, an aggregated video),
            a `video=<name>` folder, or the archive folder results/trajectories/<model>.
        video: the video to take from an archive folder (needed when it holds several).

    Returns:
        movement's poses dataset: `position` float (T, 2, K, I) in pixels (x the column, y the
        row, the centre of the top-left pixel at (0, 0)) and `confidence` (T, K, I), NaN where
        posecore has no point; coordinates `time` (seconds from the video's first frame, one
        per frame that has rows), `frame` along time, `space` ("x", "y"), `keypoints` (the
        model's order), `individuals` ("animal<instance>"); attrs `source_software`
        ("posecore"), `ds_type` ("poses"), `fps` (mean frame rate over the rows' frames, when
        there are two frames or more), `time_unit` ("seconds"), `source_file`, `video` and,
        from the file's provenance, `model_hash` and `posecore_version`.

    Raises:
        InputError: see `posecore.io.trajectory_arrays.trajectory_files` and `read_points`
            (an empty archive, a file without rows, a repeated (frame, instance, keypoint)).
        ImportError: movement is not installed, with the command that installs it.
    """
    files, name = trajectory_files(source, video)
    points = read_points(files)
    try:
        from movement.io.load_poses import from_numpy
        from movement.validators.datasets import ValidPosesInputs
    except ImportError as error:
        raise ImportError(f"load_poses needs the movement package: pip install movement ({error})") from error

    fps = None
    if len(points.frames) > 1 and points.times[-1] > points.times[0]:
        fps = float((points.frames[-1] - points.frames[0]) / (points.times[-1] - points.times[0]))
    # movement's layout, whatever its version's dimension order: name ours, then move them there.
    ours = ("time", "individuals", "keypoints", "space")
    order = [ours.index(dim) for dim in ValidPosesInputs.DIM_NAMES]
    position = np.transpose(points.points[..., :2], order)  # (T, 2, K, I) in movement 0.15
    confidence_dims = [dim for dim in ValidPosesInputs.DIM_NAMES if dim != "space"]
    confidence = np.transpose(points.points[..., 2], [ours.index(dim) for dim in confidence_dims])  # (T, K, I)
    dataset = from_numpy(
        position_array=np.ascontiguousarray(position, dtype=np.float64),
        confidence_array=np.ascontiguousarray(confidence, dtype=np.float64),
        individual_names=[f"animal{i}" for i in points.instances],
        keypoint_names=list(points.keypoint_names),
        fps=fps,
        source_software="posecore",
    )
    dataset = dataset.assign_coords(time=points.times, frame=("time", points.frames))
    dataset.attrs.update(time_unit="seconds", source_file=str(files[0] if len(files) == 1 else files[0].parent))
    if name is not None:
        dataset.attrs["video"] = name
    if fps is None:
        dataset.attrs.pop("fps", None)
    provenance = _provenance(files[0])
    for key in ("model_hash", "posecore_version"):
        if key in provenance:
            dataset.attrs[key] = provenance[key]
    return dataset


def _provenance(path: Path) -> dict:
    """The file's posecore provenance, or {} for a file without one (written by other means)."""
    from posecore.io.trajectories import read_provenance

    try:
        return read_provenance(path)
    except InputError:
        return {}
