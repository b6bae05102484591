"""The QC report's inputs: the artefacts of the other stages, read and checked against their contracts.

Each reader raises `InputError` naming the file and the key when an artefact breaks its
contract (DESIGN.md), so a report is never built from inputs that don't fit together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.qc import plots

TRAJECTORY_SCHEMA = pa.schema(
    [
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("instance", pa.int16()),
        ("keypoint", pa.string()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("score", pa.float32()),
        ("video", pa.string()),
    ]
)
"""The trajectory table as the report reads it; `keypoint` may be stored dictionary-encoded."""

PREDICTION_COLUMNS = ("frame", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px")
"""Columns of the evaluation's predictions Parquet."""


@dataclass(frozen=True)
class EvalMetrics:
    """The evaluation's metrics JSON: errors in pixels per keypoint (None: no label in the split)."""

    split: str
    n_frames: int | None
    keypoints: tuple[str, ...]
    rmse_px: Mapping[str, float | None]
    rmse_px_all: float | None
    median_px: Mapping[str, float | None] | None = None
    p90_px: Mapping[str, float | None] | None = None


@dataclass(frozen=True)
class VideoSummary:
    """What the report says about one video: its probe, and the statistics of its trajectories."""

    name: str
    probe: Mapping[str, Any] | None = None
    n_frames: int = 0
    n_instances: int = 0
    median_score: float | None = None
    fraction_low: float | None = None
    figure_uri: str | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)


def _number(value: Any, path: Path, where: str) -> float | None:
    """A JSON number as float, None for null or NaN; anything else is an InputError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(path, f"expected a number or null, got {value!r}", where=where)
    return None if math.isnan(value) else float(value)


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; a missing file, bad JSON or a non-object is an InputError."""
    try:
        content = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise InputError(path, f"expected a JSON object, got {type(content).__name__}")
    return content


def read_metrics(path: Path) -> EvalMetrics:
    """Read and check the evaluation's metrics JSON (`keypoints`, `rmse_px`, optional median/p90)."""
    content = _read_json_object(path)
    for key in ("keypoints", "rmse_px"):
        if key not in content:
            raise InputError(path, "required key is missing", where=f"key {key}")
    keypoints = content["keypoints"]
    if not isinstance(keypoints, list) or not all(isinstance(k, str) for k in keypoints) or not keypoints:
        raise InputError(path, "expected a non-empty list of keypoint names", where="key keypoints")
    tables: dict[str, dict[str, float | None] | None] = {}
    for key in ("rmse_px", "median_px", "p90_px"):
        if key not in content and key != "rmse_px":
            tables[key] = None
            continue
        if not isinstance(content[key], dict):
            raise InputError(path, "expected an object keyed by keypoint name", where=f"key {key}")
        missing = [k for k in keypoints if k not in content[key]]
        if missing:
            raise InputError(path, f"no value for keypoint {missing[0]!r}", where=f"key {key}")
        tables[key] = {k: _number(content[key][k], path, f"key {key}.{k}") for k in keypoints}
    n_frames = content.get("n_frames")
    return EvalMetrics(
        split=str(content.get("split", "test")),
        n_frames=None if n_frames is None else int(n_frames),
        keypoints=tuple(keypoints),
        rmse_px=tables["rmse_px"] or {},
        rmse_px_all=_number(content.get("rmse_px_all"), path, "key rmse_px_all"),
        median_px=tables["median_px"],
        p90_px=tables["p90_px"],
    )


PROBE_TYPES: Mapping[str, tuple[type, ...]] = {
    "n_frames": (int,),
    "fps": (int, float),
    "width": (int,),
    "height": (int,),
    "codec": (str,),
    "pix_fmt": (str,),
    "duration_s": (int, float),
    "variable_frame_rate": (bool,),
}
"""Probe JSON fields that the report shows, and their JSON types; each may be absent or null."""


def read_probe(path: Path) -> dict[str, Any]:
    """Read one video's probe JSON and check the types of the fields the report shows."""
    probe = _read_json_object(path)
    for key, types in PROBE_TYPES.items():
        value = probe.get(key)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            expected = " or ".join(t.__name__ for t in types)
            raise InputError(path, f"expected {expected}, got {value!r}", where=f"key {key}")
    return probe


def read_labeled_counts(path: Path, keypoints: Sequence[str]) -> dict[str, int]:
    """Number of labeled points per keypoint (finite `error_px`) in the predictions Parquet."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pa.ArrowInvalid as error:
        raise InputError(path, f"not a Parquet file: {error}") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in schema.names]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}")
    table = pq.read_table(path, columns=["keypoint", "error_px"]).to_pandas()
    table["keypoint"] = table["keypoint"].astype(str)
    unknown = sorted(set(table["keypoint"]) - set(keypoints))
    if unknown:
        raise InputError(path, f"keypoint {unknown[0]!r} is not in the metrics' keypoints {list(keypoints)}")
    labeled = table[np.isfinite(table["error_px"].to_numpy(dtype=float))]
    counts = labeled.groupby("keypoint").size()
    return {k: int(counts.get(k, 0)) for k in keypoints}


def read_training_log(path: Path) -> pd.DataFrame:
    """The flattened CSVLogger metrics: `step` and any of `train/loss`, `val/loss`, `val/rmse_px`."""
    try:
        log = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise InputError(path, f"not a readable CSV: {error}") from None
    if "step" not in log.columns:
        raise InputError(path, "missing column step")
    if not {"train/loss", "val/loss", "val/rmse_px"} & set(log.columns):
        raise InputError(path, "none of the columns train/loss, val/loss, val/rmse_px")
    return log


def _fragments_by_video(trajectories_dir: Path, dataset: ds.Dataset) -> dict[str, list[ds.Fragment]]:
    """The dataset's files grouped by the `video=<name>` folder they sit in, schemas checked."""
    by_video: dict[str, list[ds.Fragment]] = {}
    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        if "video" not in keys:
            raise InputError(fragment.path, f"not inside a video=<name> folder of {trajectories_dir}")
        names = fragment.physical_schema.names
        missing = [c for c in TRAJECTORY_SCHEMA.names if c != "video" and c not in names]
        if missing:
            raise InputError(fragment.path, f"missing column(s) {', '.join(missing)}")
        by_video.setdefault(str(keys["video"]), []).append(fragment)
    return by_video


def _provenance(fragment: ds.Fragment) -> dict[str, str]:
    """The file's own key-value metadata (model hash, version, config), without Arrow/pandas internals."""
    metadata = fragment.physical_schema.metadata or {}
    shown = {}
    for key, value in metadata.items():
        name = key.decode("utf-8", "replace")
        if name in ("pandas", "ARROW:schema"):
            continue
        text = value.decode("utf-8", "replace")
        shown[name] = text if len(text) <= 400 else text[:400] + " …"
    return shown


def summarize_trajectories(
    trajectories_dir: Path, keypoints: Sequence[str], score_threshold: float
) -> tuple[dict[str, VideoSummary], np.ndarray]:
    """Read the trajectories one video at a time: statistics, a trajectory figure and score counts.

    Returns:
        The summary of every video that has trajectory files, by name, and the score histogram
        counts (K, len(plots.SCORE_BINS) - 1) over all videos, in `keypoints` order.
    """
    if not Path(trajectories_dir).is_dir():
        raise InputError(trajectories_dir, "trajectories folder not found")
    partitioning = ds.partitioning(pa.schema([("video", pa.string())]), flavor="hive")
    dataset = ds.dataset(trajectories_dir, format="parquet", partitioning=partitioning, schema=TRAJECTORY_SCHEMA)
    counts = np.zeros((len(keypoints), len(plots.SCORE_BINS) - 1), dtype=np.int64)
    summaries = {}
    for name, fragments in sorted(_fragments_by_video(trajectories_dir, dataset).items()):
        columns = [c for c in TRAJECTORY_SCHEMA.names if c != "video"]
        table = dataset.to_table(filter=ds.field("video") == name, columns=columns).to_pandas()
        if table.empty:
            continue
        table["keypoint"] = table["keypoint"].astype(str)
        unknown = sorted(set(table["keypoint"]) - set(keypoints))
        if unknown:
            raise InputError(
                fragments[0].path, f"keypoint {unknown[0]!r} is not one of the model's keypoints {list(keypoints)}"
            )
        scores = table["score"].to_numpy(dtype=float)  # (N,)
        finite = np.isfinite(scores)
        for index, keypoint in enumerate(keypoints):
            chosen = np.clip(scores[finite & (table["keypoint"] == keypoint).to_numpy()], 0.0, 1.0)
            counts[index] += np.histogram(chosen, bins=plots.SCORE_BINS)[0]
        present = [k for k in keypoints if k in set(table["keypoint"])]
        figure = plots.trajectory_plot(table, present, score_threshold, title=name)
        summaries[name] = VideoSummary(
            name=name,
            n_frames=int(table["frame"].nunique()),
            n_instances=int(table["instance"].nunique()),
            median_score=float(np.median(scores[finite])) if finite.any() else None,
            fraction_low=float(np.mean(~(scores >= score_threshold))),  # NaN scores count as low
            figure_uri=plots.figure_to_data_uri(figure),
            provenance=_provenance(fragments[0]),
        )
    return summaries, counts
