"""Exports of one video's trajectories for the tools users already have.

- DeepLabCut: a frame-indexed table whose columns are (scorer, bodyparts, coords) with coords
  x, y and likelihood (one more level, individuals, when there are several instances), as
  H5 (`pandas.read_hdf(path)`, key "df_with_missing", as DeepLabCut writes it) or CSV
  (`pandas.read_csv(path, header=[0, 1, 2], index_col=0)`).
- NWB through the ndx-pose extension: one `PoseEstimationSeries` per keypoint (x, y in
  pixels, confidence = score, timestamps = the frames' times) in a `PoseEstimation` with its
  `Skeleton` and source video, under the processing module "behavior" (`pynwb.NWBHDF5IO(path).read()`).
- SLEAP: tracked predicted instances through sleap-io (`posecore.io.sleap_tracks.write_slp`), to
  proofread tracks in SLEAP's GUI.

`write_export(kind, ...)` writes any of them (`EXPORTS`), as `posecore predict --export` and
the workflow's `export_video` rule do.

Every export takes a long-format trajectory table (docs/design.md, "Trajectories") of one video,
and `values` picks the raw x, y or the filtered ones (`posecore.filters`). Missing points are
NaN in every format. Files are written atomically.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path

Values = Literal["raw", "filtered"]
Export = Literal["dlc-h5", "dlc-csv", "nwb", "slp"]
EXPORTS: tuple[Export, ...] = ("dlc-h5", "dlc-csv", "nwb", "slp")
DLC_H5_KEY = "df_with_missing"


def _columns(table: pd.DataFrame, values: Values) -> tuple[str, str]:
    if values == "raw":
        return "x", "y"
    if values == "filtered":
        if "x_filtered" not in table.columns:
            raise ValueError("values='filtered' needs a table from posecore.filters.filter_trajectories")
        return "x_filtered", "y_filtered"
    raise ValueError(f"unknown values {values!r}; known: raw, filtered")


def _check_one_video(table: pd.DataFrame) -> None:
    if "video" in table.columns and table["video"].nunique() > 1:
        raise ValueError(f"an export holds one video; the table has {table['video'].nunique()}")


def to_dlc_frame(
    table: pd.DataFrame, scorer: str, keypoint_names: Sequence[str] | None = None, values: Values = "raw"
) -> pd.DataFrame:
    """DeepLabCut's table of one video's trajectories.

    Args:
        table: long-format rows (frame, instance, keypoint, x, y, score) of one video.
        scorer: the first column level (DeepLabCut puts the network's name there).
        keypoint_names: the bodyparts, in column order; default: the table's order of keypoints.
        values: "raw" or "filtered" coordinates.

    Returns:
        Rows indexed by frame (every frame from the first to the last, absent ones NaN),
        float64 columns (scorer, bodyparts, coords), or (scorer, individuals, bodyparts,
        coords) when there are several instances: multi-animal DeepLabCut's layout, the
        individuals named by their track (`MULTI_ANIMAL_SCHEMA`'s `track`), else "animal0",
        "animal1", ...
    """
    _check_one_video(table)
    x_col, y_col = _columns(table, values)
    names = list(keypoint_names) if keypoint_names is not None else list(pd.unique(table["keypoint"].astype(str)))
    instances = sorted(int(i) for i in pd.unique(table["instance"]))
    frames = np.arange(int(table["frame"].min()), int(table["frame"].max()) + 1) if len(table) else np.array([])
    long = table.assign(
        keypoint=table["keypoint"].astype(str), instance=table["instance"].astype(int), x=table[x_col], y=table[y_col]
    )
    wide = long.pivot_table(
        index="frame", columns=["instance", "keypoint"], values=["x", "y", "score"], dropna=False, aggfunc="first"
    )  # columns (coord, instance, keypoint)
    columns = pd.MultiIndex.from_tuples(
        [(i, k, c) for i in instances for k in names for c in ("x", "y", "score")], names=["instance", "keypoint", "c"]
    )  # the names give an empty table (no instance) its three levels
    wide = wide.reorder_levels([1, 2, 0], axis=1).reindex(columns=columns).reindex(frames).astype(np.float64)
    individual = {i: f"animal{i}" for i in instances}
    if "track" in table.columns:  # tracked: an instance is one track, named in every row where it is present
        named = table[table["track"].astype(str) != ""]
        individual.update(named.groupby(named["instance"].astype(int))["track"].first().astype(str).to_dict())
    several = len(instances) > 1 or "track" in table.columns  # a multi-animal file keeps its individuals
    levels = [("individuals", [individual[i] for i in instances])] if several else []
    tuples = [
        (scorer, *([individual[i]] if levels else []), k, "likelihood" if c == "score" else c) for i, k, c in columns
    ]
    names_out = ["scorer", *(["individuals"] if several else []), "bodyparts", "coords"]
    wide.columns = pd.MultiIndex.from_tuples(tuples, names=names_out)
    wide.index = wide.index.rename(None)
    return wide


def write_dlc_h5(
    table: pd.DataFrame,
    path: str | Path,
    scorer: str,
    keypoint_names: Sequence[str] | None = None,
    values: Values = "raw",
) -> None:
    """Write `to_dlc_frame` as DeepLabCut's H5 (PyTables, key "df_with_missing"), atomically."""
    frame = to_dlc_frame(table, scorer, keypoint_names, values)
    with atomic_path(path) as tmp:
        frame.to_hdf(tmp, key=DLC_H5_KEY, format="table", mode="w")


def write_dlc_csv(
    table: pd.DataFrame,
    path: str | Path,
    scorer: str,
    keypoint_names: Sequence[str] | None = None,
    values: Values = "raw",
) -> None:
    """Write `to_dlc_frame` as DeepLabCut's CSV (three or four header rows, frame index), atomically."""
    frame = to_dlc_frame(table, scorer, keypoint_names, values)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp)


def write_nwb(
    table: pd.DataFrame,
    path: str | Path,
    *,
    keypoint_names: Sequence[str],
    skeleton: Sequence[tuple[int, int]] = (),
    video_path: str | Path = "",
    scorer: str = "posecore",
    values: Values = "raw",
    session_start_time: datetime.datetime | None = None,
) -> None:
    """Write one video's trajectories as NWB with ndx-pose, atomically.

    Args:
        table: long-format rows (frame, time_s, instance, keypoint, x, y, score) of one video,
            one instance.
        path: the .nwb file.
        keypoint_names: the K keypoints (skeleton nodes, in order).
        skeleton: edges as pairs of indices into `keypoint_names`.
        video_path: the source video, recorded as the original video.
        scorer: who made the points (the model's name or hash).
        values: "raw" or "filtered" coordinates.
        session_start_time: the recording's start; default: the time of writing (NWB needs one).

    Raises:
        ValueError: the table holds several instances or videos, or a keypoint not in `keypoint_names`.
    """
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    _check_one_video(table)
    if table["instance"].nunique() > 1:
        raise ValueError("write_nwb takes one instance; select one with table[table.instance == i]")
    x_col, y_col = _columns(table, values)
    names = list(keypoint_names)
    unknown = sorted(set(table["keypoint"].astype(str)) - set(names))
    if unknown:
        raise ValueError(f"keypoints {unknown} are not in keypoint_names {names}")
    nodes_skeleton = Skeleton(
        name="skeleton", nodes=names, edges=np.asarray(list(skeleton), dtype=np.uint8).reshape(-1, 2)
    )
    series = []
    for name in names:
        rows = table[table["keypoint"].astype(str) == name].sort_values("frame")
        series.append(
            PoseEstimationSeries(
                name=name,
                description=f"{name}: x (column), y (row) in pixels of the video frame, pixel centres at integers",
                data=np.stack([rows[x_col].to_numpy(np.float64), rows[y_col].to_numpy(np.float64)], axis=1),
                unit="pixels",
                reference_frame="(0, 0) is the centre of the top-left pixel of the video frame; y points down",
                timestamps=rows["time_s"].to_numpy(np.float64),
                confidence=rows["score"].to_numpy(np.float64),
                confidence_definition="peak value of the model's confidence map",
            )
        )
    video = None
    if video_path:
        video = ImageSeries(
            name="source_video",
            description="the video the keypoints were estimated on",
            unit="n.a.",
            external_file=[str(video_path)],
            format="external",
            starting_frame=[0],
            timestamps=series[0].timestamps,
        )
    pose = PoseEstimation(
        name="PoseEstimation",
        pose_estimation_series=series,
        description="Keypoints estimated by posecore",
        source_video=video,
        scorer=scorer,
        source_software="posecore",
        source_software_version=__version__,
        skeleton=nodes_skeleton,
    )
    nwb = NWBFile(
        session_description=f"posecore pose estimation of {Path(str(video_path)).name or 'a video'}",
        identifier=f"posecore-{Path(str(video_path)).stem or 'video'}-{scorer}",
        session_start_time=session_start_time or datetime.datetime.now(datetime.timezone.utc),
    )
    if video is not None:
        nwb.add_acquisition(video)
    behavior = nwb.create_processing_module(name="behavior", description="pose estimation")
    behavior.add(Skeletons(skeletons=[nodes_skeleton]))
    behavior.add(pose)
    with atomic_path(path) as tmp, NWBHDF5IO(str(tmp), mode="w") as io:  # tmp keeps the .nwb suffix pynwb wants
        io.write(nwb)


def export_name(video_stem: str, kind: Export, scorer: str) -> str:
    """The file name of an export of a video's trajectories (DeepLabCut's `<video><scorer>.h5` naming)."""
    return {
        "dlc-h5": f"{video_stem}_{scorer}.h5",
        "dlc-csv": f"{video_stem}_{scorer}.csv",
        "nwb": f"{video_stem}.nwb",
        "slp": f"{video_stem}.slp",
    }[kind]


def write_export(
    kind: Export,
    table: pd.DataFrame,
    path: str | Path,
    *,
    keypoint_names: Sequence[str],
    skeleton: Sequence[tuple[int, int]] = (),
    video_path: str | Path = "",
    scorer: str = "posecore",
    values: Values = "raw",
    video_shape: tuple[int, int, int, int] | None = None,
) -> None:
    """Write one export of one video's trajectories.

    Args:
        kind: "dlc-h5", "dlc-csv" (DeepLabCut, multi-animal with an individual per track when
            the table is), "nwb" (one animal) or "slp" (SLEAP, tracked predicted instances).
        table: the video's long-format rows.
        path: the file.
        keypoint_names: the K keypoints in order.
        skeleton: edges as pairs of indices into `keypoint_names`.
        video_path: the source video (NWB and SLEAP record it).
        scorer: who made the points (DeepLabCut's scorer level, NWB's scorer).
        values: "raw" or "filtered" coordinates (not for SLEAP, which takes the raw ones).
        video_shape: (frames, height, width, channels) of the video, for SLEAP.

    Raises:
        ValueError: an unknown kind, or what the writer refuses.
    """
    if kind == "dlc-h5":
        write_dlc_h5(table, path, scorer, keypoint_names, values)
    elif kind == "dlc-csv":
        write_dlc_csv(table, path, scorer, keypoint_names, values)
    elif kind == "nwb":
        write_nwb(table, path, keypoint_names=keypoint_names, skeleton=skeleton, video_path=video_path,
                  scorer=scorer, values=values)  # fmt: skip
    elif kind == "slp":
        from posecore.io.sleap_tracks import write_slp

        if values != "raw":
            raise ValueError("a SLEAP export holds the raw points")
        edges = [(keypoint_names[a], keypoint_names[b]) for a, b in skeleton]
        write_slp(table, path, video=video_path, skeleton=edges, keypoint_names=keypoint_names,
                  video_shape=video_shape)  # fmt: skip
    else:
        raise ValueError(f"unknown export {kind!r}; posecore writes {', '.join(EXPORTS)}")


def read_trajectory_table(path: str | Path) -> pd.DataFrame:
    """One trajectory Parquet file (a shard or an aggregated video) as a DataFrame, named in errors."""
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise InputError(path, f"not a readable trajectory file ({error})") from error


def export_trajectories(
    trajectories: str | Path,
    kind: Export,
    path: str | Path,
    *,
    video_path: str | Path,
    keypoint_names: Sequence[str],
    skeleton: Sequence[tuple[str, str]] = (),
    video_shape: tuple[int, int, int, int] | None = None,
) -> None:
    """Write one export of a trajectory file (the workflow's `export_video` rule).

    Args:
        trajectories: the video's trajectory Parquet file.
        kind: see `write_export`.
        path: the export file.
        video_path: the video they are of.
        keypoint_names: the K keypoints in order.
        skeleton: edges as pairs of keypoint names.
        video_shape: (frames, height, width, channels) of the video, for SLEAP.

    Raises:
        InputError: the trajectory file is unreadable, or the skeleton names a keypoint that is
            not one of `keypoint_names`.
    """
    from posecore.io.trajectories import read_provenance

    names = list(keypoint_names)
    unknown = sorted({name for edge in skeleton for name in edge} - set(names))
    if unknown:
        raise InputError(trajectories, f"the skeleton names keypoints {unknown} that are not among {names}")
    table = read_trajectory_table(trajectories)
    try:
        scorer = f"posecore-{read_provenance(trajectories)['model_hash'][:12]}"
    except (InputError, KeyError):
        scorer = "posecore"
    edges = [(names.index(a), names.index(b)) for a, b in skeleton]
    write_export(kind, table, path, keypoint_names=names, skeleton=edges, video_path=video_path, scorer=scorer,
                 video_shape=video_shape)  # fmt: skip
