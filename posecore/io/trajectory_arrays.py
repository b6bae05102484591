"""Trajectory files read back as arrays: a one-pass summary, frames in chunks, or a whole video.

posecore writes trajectories frame-major (`posecore.io.trajectories`): the rows of a frame come
together and frames ascend. That order lets a long video's points be streamed in chunks of
frames while only one Parquet batch is in memory (`iter_points`, for drawing over a video of
any length), after one pass over a few columns has learned the file's frames, instances and
keypoints (`summarize`). `read_points` takes a whole video's files at once (for analysis tools
that hold the video's points in memory anyway); `trajectory_files` finds them in the
workflow's archive folder.

Points are float32 arrays (F, I, K, 3): frame, instance, keypoint, then (x, y, score), with x
the column and y the row in pixels; NaN where the file has NaN or has no row for that cell.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from posecore.errors import InputError

POINT_COLUMNS = ("frame", "instance", "keypoint", "x", "y", "score")
_BATCH_ROWS = 65536


@dataclass(frozen=True)
class TrajectorySummary:
    """What one pass over a trajectory file learns, holding one batch of rows at a time.

    Attributes:
        path: the file.
        n_rows: rows in the file.
        first_frame: the smallest frame index (-1 when the file has no rows).
        last_frame: the largest frame index (-1 when the file has no rows).
        instances: the instance ids, ascending.
        keypoint_names: the keypoints in the file's order (the model's output order).
        x_range: (min, max) of the finite x; (nan, nan) when there is none.
        y_range: (min, max) of the finite y; (nan, nan) when there is none.
        time_samples: float64 (S, 2) rows (frame, time_s): the first row of every batch and the
            last row of the file, to compare with a video's frame times.
        frame_ordered: whether the frames never decrease from one row to the next.
    """

    path: str
    n_rows: int
    first_frame: int
    last_frame: int
    instances: tuple[int, ...]
    keypoint_names: tuple[str, ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    time_samples: np.ndarray
    frame_ordered: bool


@dataclass(frozen=True)
class VideoPoints:
    """One video's trajectories as dense arrays over the frames that have rows.

    Attributes:
        frames: int64 (F,) frame indices, ascending.
        times: float64 (F,) their times in seconds from the video's first frame.
        instances: the I instance ids, ascending.
        keypoint_names: the K keypoints, in the files' order.
        points: float32 (F, I, K, 3) (x, y, score); NaN where there is no value.
    """

    frames: np.ndarray
    times: np.ndarray
    instances: tuple[int, ...]
    keypoint_names: tuple[str, ...]
    points: np.ndarray


def _parquet_file(path: str | Path, columns: Sequence[str]) -> pq.ParquetFile:
    """Open a trajectory file, checking that it is Parquet and has `columns`."""
    if not Path(path).is_file():
        raise InputError(path, "no such trajectory file")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise InputError(path, f"not a readable Parquet trajectory file ({error})") from error
    missing = [c for c in columns if c not in parquet.schema_arrow.names]
    if missing:
        raise InputError(path, f"not a trajectory file: missing columns {missing}")
    return parquet


def _names_of(column: pa.Array) -> tuple[pa.Array, list[str]]:
    """A keypoint column's (indices, dictionary names), dictionary-encoding a plain string column."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.null_count:
        raise ValueError("a row has no keypoint name")
    return column.indices, [str(name) for name in column.dictionary.to_pylist()]


def _keypoint_codes(column: pa.Array, names: Sequence[str], path: str | Path) -> np.ndarray:
    """int64 (R,) index into `names` of each row's keypoint."""
    try:
        indices, dictionary = _names_of(column)
    except ValueError as error:
        raise InputError(path, str(error)) from None
    position = {name: k for k, name in enumerate(names)}
    unknown = [name for name in dictionary if name not in position]
    if unknown:
        raise InputError(path, f"keypoint {unknown[0]!r} is not one of {list(names)}")
    lookup = np.asarray([position[name] for name in dictionary], dtype=np.int64).reshape(-1)  # (D,)
    return lookup[indices.to_numpy(zero_copy_only=False).astype(np.int64)]


def _finite_range(values: np.ndarray, current: tuple[float, float]) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return current
    return float(np.fmin(current[0], finite.min())), float(np.fmax(current[1], finite.max()))


def summarize(path: str | Path) -> TrajectorySummary:
    """One pass over a trajectory file's frame, time, instance, keypoint and coordinate columns.

    Raises:
        InputError: the file is missing, not Parquet, lacks a column of `POINT_COLUMNS` or
            time_s, or has a row without a keypoint name.
    """
    parquet = _parquet_file(path, (*POINT_COLUMNS, "time_s"))
    names: dict[str, None] = {}  # insertion-ordered set
    instances: set[int] = set()
    x_range = y_range = (np.nan, np.nan)
    samples: list[tuple[float, float]] = []
    n_rows, first, last, previous, ordered = 0, np.inf, -np.inf, -np.inf, True
    columns = ["frame", "time_s", "instance", "keypoint", "x", "y"]
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        if batch.num_rows == 0:
            continue
        frame = batch.column("frame").to_numpy(zero_copy_only=False).astype(np.int64)  # (R,)
        time = batch.column("time_s").to_numpy(zero_copy_only=False).astype(np.float64)  # (R,)
        ordered = ordered and previous <= frame[0] and bool(np.all(np.diff(frame) >= 0))
        previous = frame[-1]
        first, last = min(first, frame.min()), max(last, frame.max())
        samples += [(frame[0], time[0]), (frame[-1], time[-1])]
        instances.update(np.unique(batch.column("instance").to_numpy(zero_copy_only=False)).tolist())
        try:
            names.update(dict.fromkeys(_names_of(batch.column("keypoint"))[1]))
        except ValueError as error:
            raise InputError(path, str(error)) from None
        x_range = _finite_range(batch.column("x").to_numpy(zero_copy_only=False), x_range)
        y_range = _finite_range(batch.column("y").to_numpy(zero_copy_only=False), y_range)
        n_rows += batch.num_rows
    return TrajectorySummary(
        path=str(path),
        n_rows=n_rows,
        first_frame=int(first) if n_rows else -1,
        last_frame=int(last) if n_rows else -1,
        instances=tuple(sorted(int(i) for i in instances)),
        keypoint_names=tuple(names),
        x_range=x_range,
        y_range=y_range,
        time_samples=np.asarray(samples, dtype=np.float64).reshape(-1, 2),
        frame_ordered=ordered,
    )


def _scatter(
    batch: pa.RecordBatch | pa.Table,
    slots: np.ndarray,
    instances: Sequence[int],
    names: Sequence[str],
    out: np.ndarray,
    path: str | Path,
) -> None:
    """Write each row's (x, y, score) into out[slot, instance, keypoint] (out: (F, I, K, 3))."""
    if isinstance(batch, pa.Table):
        batch = batch.unify_dictionaries()
    instance = _array(batch, "instance").to_numpy(zero_copy_only=False).astype(np.int64)  # (R,)
    instance_code = np.searchsorted(np.asarray(instances, dtype=np.int64), instance)  # (R,)
    keypoint_code = _keypoint_codes(_array(batch, "keypoint"), names, path)  # (R,)
    for c, column in enumerate(("x", "y", "score")):
        out[slots, instance_code, keypoint_code, c] = _array(batch, column).to_numpy(zero_copy_only=False)


def _array(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    """One column as a single array (a table's chunks share one dictionary after `unify_dictionaries`)."""
    column = batch.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def iter_points(
    summary: TrajectorySummary, start: int, stop: int, chunk_frames: int = 256
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream the points of frames [start, stop) in consecutive chunks, one Parquet batch in memory.

    Args:
        summary: the file's `summarize` result (its rows must be in frame order).
        start: the first frame.
        stop: one past the last frame.
        chunk_frames: frames per chunk; the last chunk may be shorter.

    Yields:
        (first frame of the chunk, float32 (n, I, K, 3) points), NaN where the file has no row.

    Raises:
        InputError: the rows are not in frame order.
    """
    if not summary.frame_ordered:
        raise InputError(summary.path, "rows are not in frame order; sort the table by frame and write it again")
    shape = (len(summary.instances), len(summary.keypoint_names), 3)
    columns = list(POINT_COLUMNS)
    batches = _parquet_file(summary.path, columns).iter_batches(batch_size=_BATCH_ROWS, columns=columns)
    pending: pa.Table | None = None  # rows read but not yet placed
    exhausted = False
    for first in range(start, stop, chunk_frames):
        end = min(first + chunk_frames, stop)
        # Read on until a row at or past `end` is seen: every row of [first, end) is then in `pending`.
        while not exhausted and (pending is None or pending.num_rows == 0 or _last_frame(pending) < end):
            batch = next(batches, None)
            if batch is None:
                exhausted = True
            else:
                table = pa.Table.from_batches([batch])
                pending = table if pending is None else pa.concat_tables([pending, table], promote_options="default")
        points = np.full((end - first, *shape), np.nan, dtype=np.float32)  # (n, I, K, 3)
        if pending is not None and pending.num_rows:
            frame = pending.column("frame").to_numpy().astype(np.int64)  # (R,)
            inside = (frame >= first) & (frame < end)
            _scatter(pending.filter(pa.array(inside)), frame[inside] - first, summary.instances,
                     summary.keypoint_names, points, summary.path)  # fmt: skip
            pending = pending.filter(pa.array(frame >= end))
        yield first, points


def _last_frame(table: pa.Table) -> int:
    return int(table.column("frame")[-1].as_py())


def read_points(files: Sequence[str | Path]) -> VideoPoints:
    """One video's trajectory files (in any row order) as dense arrays over the frames they have.

    Raises:
        InputError: a file is missing, unreadable or lacks a column, the files have no rows, a
            frame has two different times, or a (frame, instance, keypoint) has two rows.
    """
    if not files:
        raise InputError("<no files>", "no trajectory files to read")
    tables = []
    for path in files:
        parquet = _parquet_file(path, (*POINT_COLUMNS, "time_s"))
        tables.append(parquet.read(columns=[*POINT_COLUMNS, "time_s"]))
    where = files[0] if len(files) == 1 else Path(files[0]).parent
    try:
        table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries().combine_chunks()
    except pa.ArrowException as error:
        raise InputError(where, f"its files do not share one table layout ({error})") from error
    if table.num_rows == 0:
        raise InputError(where, "the trajectory table has no rows")
    keypoint = _array(table, "keypoint")
    try:
        names = tuple(_names_of(keypoint)[1])
    except ValueError as error:
        raise InputError(where, str(error)) from None
    frame = table.column("frame").to_numpy().astype(np.int64)  # (R,)
    time = table.column("time_s").to_numpy().astype(np.float64)  # (R,)
    frames, slot = np.unique(frame, return_inverse=True)  # (F,), (R,)
    times = np.full(len(frames), np.nan)
    times[slot] = time
    if not np.array_equal(times[slot], time, equal_nan=True):
        bad = int(frame[np.argmax(times[slot] != time)])
        raise InputError(where, "a frame has rows with different times", where=f"frame {bad}")
    instances = tuple(int(i) for i in np.unique(table.column("instance").to_numpy()))
    points = np.full((len(frames), len(instances), len(names), 3), np.nan, dtype=np.float32)  # (F, I, K, 3)
    cells = (slot * len(instances) + np.searchsorted(instances, table.column("instance").to_numpy())) * len(names)
    cells = cells + _keypoint_codes(keypoint, names, where)  # (R,) one id per (frame, instance, keypoint)
    if len(np.unique(cells)) != len(cells):
        repeated = int(frame[np.argmax(np.bincount(cells)[cells] > 1)])
        raise InputError(where, "a (frame, instance, keypoint) has two rows", where=f"frame {repeated}")
    _scatter(table, slot, instances, names, points, where)
    return VideoPoints(frames=frames, times=times, instances=instances, keypoint_names=names, points=points)


def trajectory_files(source: str | Path, video: str | None = None) -> tuple[list[Path], str | None]:
    """The Parquet files of one video's trajectories, and the video's name where the layout says it.

    Args:
        source: a trajectory Parquet file, a `video=<name>` partition folder, or an archive
            folder holding such partitions (results/trajectories/<model>).
        video: the video to take from an archive folder; may be left out when it holds one.

    Raises:
        InputError: the source is missing, the archive holds no trajectory files, `video` is
            not in it, or it holds several videos and `video` is not given.
    """
    path = Path(source)
    if path.is_file():
        return [path], video
    if not path.is_dir():
        raise InputError(path, "no such trajectory file or folder")
    partitions = {p.name.partition("=")[2]: p for p in sorted(path.glob("video=*")) if p.is_dir()}
    if not partitions and path.name.startswith("video="):
        partitions = {path.name.partition("=")[2]: path}
    if partitions:
        if video is None and len(partitions) > 1:
            raise InputError(
                path, f"holds the videos {sorted(partitions)}; say which one (or give its video=<name> folder)"
            )
        name = video if video is not None else next(iter(partitions))
        if name not in partitions:
            raise InputError(path, f"has no trajectories of video {name!r}; it holds {sorted(partitions)}")
        path = partitions[name]
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise InputError(path, f"holds no trajectory files (*.parquet) of video {name!r}")
        return files, name
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise InputError(
            path,
            "holds no trajectory files: neither video=<name>/ partitions nor *.parquet files "
            "(the workflow writes them to results/trajectories/<model>/ in its aggregate step)",
        )
    return files, video
