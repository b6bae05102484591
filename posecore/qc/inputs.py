"""The QC report's inputs: the artefacts of the other stages, read and checked against their contracts.

Each reader raises `InputError` naming the file and the key when an artefact breaks its
contract (docs/design.md), so a report is never built from inputs that don't fit together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.io import trajectories

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


def read_probes(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """The probes of the videos that were probed, by video name (each file's stem).

    A video that could not be probed has its error recorded in place of its probe
    (`posecore.io.video.probe_to_json`): it is left out, as a video without a probe.

    Raises:
        InputError: two probes of one video, or a probe that breaks `read_probe`'s checks.
    """
    probes: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for path in map(Path, paths):
        if path.stem in seen:
            raise InputError(path, f"a second probe for video {path.stem!r}")
        seen.add(path.stem)
        probe = read_probe(path)
        if "error" not in probe:
            probes[path.stem] = probe
    return probes


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


def find_trajectory_files(trajectories_dir: Path) -> dict[str, list[Path]]:
    """The trajectory files of every video, by name, from the `video=<name>/*.parquet` folders.

    Only the files' footers are read (columns checked, no data), so this is quick for thousands
    of videos. A missing folder has no videos: when every video failed, no folder was made.

    Raises:
        InputError: a file outside a `video=<name>` folder, or missing a column of the contract.
    """
    trajectories_dir = Path(trajectories_dir)
    if not trajectories_dir.is_dir():
        return {}
    partitioning = ds.partitioning(pa.schema([("video", pa.string())]), flavor="hive")
    dataset = ds.dataset(trajectories_dir, format="parquet", partitioning=partitioning)
    by_video: dict[str, list[Path]] = {}
    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        if "video" not in keys:
            raise InputError(fragment.path, f"not inside a video=<name> folder of {trajectories_dir}")
        names = fragment.physical_schema.names
        missing = [c for c in trajectories.SCHEMA.names if c not in names]
        if missing:
            raise InputError(fragment.path, f"missing column(s) {', '.join(missing)}")
        by_video.setdefault(str(keys["video"]), []).append(Path(fragment.path))
    return {name: sorted(files) for name, files in sorted(by_video.items())}


def read_video_trajectories(files: Sequence[Path], keypoints: Sequence[str]) -> pd.DataFrame:
    """One video's trajectory rows (`frame`, `time_s`, `instance`, `keypoint`, `x`, `y`, `score`).

    Args:
        files: the video's Parquet files (from `find_trajectory_files`).
        keypoints: the model's keypoint names; a row naming another is an InputError.

    Returns:
        The rows, `keypoint` categorical (of str), x and y in pixels of the original frame.
    """
    # The contract's schema, `keypoint` read as plain strings: files store it dictionary-encoded or not.
    schema = pa.schema([pa.field("keypoint", pa.string()) if f.name == "keypoint" else f for f in trajectories.SCHEMA])
    table = ds.dataset([str(f) for f in files], format="parquet", schema=schema).to_table()
    names = table.column("keypoint").dictionary_encode()  # a categorical, not a Python str per row
    rows = table.set_column(table.schema.get_field_index("keypoint"), "keypoint", names).to_pandas()
    used = rows["keypoint"].cat.remove_unused_categories().cat.categories
    unknown = sorted(set(used) - set(keypoints))
    if unknown:
        bad = next(f for f in files if unknown[0] in set(pq.read_table(f, columns=["keypoint"]).column(0).to_pylist()))
        raise InputError(bad, f"keypoint {unknown[0]!r} is not one of the model's keypoints {list(keypoints)}")
    return rows


def file_provenance(path: Path) -> dict[str, str]:
    """A trajectory file's own key-value metadata (model hash, version, config), no Arrow internals."""
    metadata = pq.read_schema(path).metadata or {}
    shown = {}
    for key, value in metadata.items():
        name = key.decode("utf-8", "replace")
        if name in ("pandas", "ARROW:schema"):
            continue
        text = value.decode("utf-8", "replace")
        shown[name] = text if len(text) <= 400 else text[:400] + " …"
    return shown


def read_benchmark_seconds(files: Sequence[Path]) -> float | None:
    """Wall seconds of a video's jobs from Snakemake `benchmark:` TSVs (column `s`, one row per repeat).

    Returns:
        The sum over files of each file's mean `s`; None when `files` is empty.

    Raises:
        InputError: a file that is not a benchmark TSV, naming the file.
    """
    if not files:
        return None
    total = 0.0
    for path in files:
        try:
            rows = pd.read_csv(path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
            raise InputError(path, f"not a readable benchmark TSV: {error}") from None
        if "s" not in rows.columns or rows.empty:
            raise InputError(path, "no column s (wall seconds) with a value")
        seconds = pd.to_numeric(rows["s"], errors="coerce")
        if seconds.isna().any() or (seconds < 0).any():
            raise InputError(path, f"column s must hold seconds, got {rows['s'].tolist()}")
        total += float(seconds.mean())
    return total


def read_infer_seconds(records_dir: Path, benchmarks_dir: Path) -> dict[str, float]:
    """Wall seconds of inference per video: each job's time shared among its videos by the frames it made of each.

    Args:
        records_dir: the model's job records (`results/predictions/<model>/jobs/<job>.tsv`).
        benchmarks_dir: the model's job benchmarks (`benchmarks/infer/<model>/<job>.tsv`); jobs
            without one are left out.

    Returns:
        Seconds by video name, for the videos that some job made shards of (kept shards cost none).
    """
    from posecore.infer.archive import read_record

    seconds: dict[str, float] = {}
    for record in sorted(Path(records_dir).glob("*.tsv")):
        benchmark = Path(benchmarks_dir) / record.name
        if not benchmark.is_file():
            continue
        done = [r.shard for r in read_record(record) if r.status == "done"]
        total = sum(s.n_frames for s in done)
        if not total:
            continue
        job_seconds = read_benchmark_seconds([benchmark]) or 0.0
        for shard in done:
            seconds[shard.video] = seconds.get(shard.video, 0.0) + job_seconds * shard.n_frames / total
    return seconds


def unfinished_jobs(plan_tsv: Path, records_dir: Path) -> dict[str, list[str]]:
    """By video, the inference jobs of the plan that hold its shards and left no record in `records_dir`."""
    from posecore.infer.plan import read_plan

    if not Path(plan_tsv).is_file():
        return {}
    unfinished: dict[str, list[str]] = {}
    for planned in read_plan(plan_tsv):
        job = f"{planned.job:05d}"
        jobs = unfinished.setdefault(planned.shard.video, [])
        if job not in jobs and not (Path(records_dir) / f"{job}.tsv").is_file():
            jobs.append(job)
    return unfinished
