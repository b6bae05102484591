"""Keypoint trajectories in Parquet (docs/design.md, "Trajectories").

Long format, one row per (video, frame, instance, keypoint). Files hold the columns of
`SCHEMA`; the `video` column comes from the hive partition folder (`video=<name>/`) of the
aggregated dataset, so a folder of them reads as one table with pandas, pyarrow or DuckDB:

    pandas.read_parquet("results/trajectories/demo")
    pyarrow.dataset.dataset("results/trajectories/demo", partitioning="hive").to_table()
    duckdb.sql("select * from read_parquet('results/trajectories/demo/*/*.parquet', hive_partitioning=true)")

Every file's metadata carries, under the key `posecore`, a JSON object with the model's
hash, the posecore version, the config and the source video, so any number can be traced
back to what made it. Files are written atomically: a crash never leaves a file that a rerun
would take for a finished one.

Files of several animals per frame (`MULTI_ANIMAL_SCHEMA`) have three more columns: `track`
(the animal's identity; "" for a detection not yet tracked), `instance_score` (the
detection's confidence) and `swap_risk` (the tracker saw a likely identity swap for this
animal in this frame). Every frame has a row per instance slot and keypoint: `instance` is the
track's number once tracked (the detection's index in its frame before), and a slot without an
animal in a frame has NaN x, y and scores. Single-animal files keep `SCHEMA` exactly; readers
take both (`is_multi_animal`). A tracked file's metadata also holds, under `TRACKS_KEY`, its
track names by instance number and the tracker's settings (`track_metadata`, `read_tracks`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path

if TYPE_CHECKING:
    from posecore.io.video import VideoInfo

METADATA_KEY = b"posecore"
TRACKS_KEY = b"posecore_tracks"
SCHEMA = pa.schema(
    [
        pa.field("frame", pa.int64()),
        pa.field("time_s", pa.float64()),
        pa.field("instance", pa.int16()),
        pa.field("keypoint", pa.dictionary(pa.int16(), pa.string())),
        pa.field("x", pa.float32()),
        pa.field("y", pa.float32()),
        pa.field("score", pa.float32()),
    ]
)


MULTI_ANIMAL_SCHEMA = pa.schema(
    [
        *SCHEMA,
        pa.field("track", pa.dictionary(pa.int16(), pa.string())),
        pa.field("instance_score", pa.float32()),
        pa.field("swap_risk", pa.bool_()),
    ]
)


def is_multi_animal(schema: pa.Schema) -> bool:
    """Whether a trajectory file's schema is the multi-animal one (it has a `track` column)."""
    return "track" in schema.names


def track_metadata(tracks: Sequence[str], tracker: dict[str, Any]) -> dict[bytes, bytes]:
    """The Parquet metadata of a tracked file: track names by instance number, and the tracker's settings."""
    return {TRACKS_KEY: json.dumps({"tracks": list(tracks), "tracker": tracker}, sort_keys=True).encode()}


def read_tracks(path: str | Path) -> list[str] | None:
    """A tracked file's track names by instance number (`track_metadata`); None for a file without them."""
    metadata = pq.read_schema(path).metadata or {}
    if TRACKS_KEY not in metadata:
        return None
    return [str(name) for name in json.loads(metadata[TRACKS_KEY])["tracks"]]


@dataclass(frozen=True)
class Provenance:
    """What made a trajectory file: stored as JSON in the Parquet file metadata.

    `video_n_frames`, `video_width` and `video_height` are the source video's, when its probe
    was at hand: a tool that draws the trajectories over a video then refuses another video
    exactly (`posecore.label_video`). Files written without them read back without them.
    """

    model_hash: str
    config: dict[str, Any]
    video_path: str
    video_size_bytes: int
    video_mtime: float
    posecore_version: str = __version__
    video_n_frames: int | None = None
    video_width: int | None = None
    video_height: int | None = None
    decoder: str = ""

    @classmethod
    def for_video(
        cls,
        model_hash: str,
        config: dict[str, Any],
        video_path: str | Path,
        info: VideoInfo | None = None,
        decoder: str = "",
    ) -> Provenance:
        """Provenance of trajectories of `video_path`: its size and time, with `info` its frame count and size.

        `decoder` names what decoded the frames (the inference job's decoder).
        """
        stat = Path(video_path).stat()
        shape = {}
        if info is not None:
            shape = {"video_n_frames": info.n_frames, "video_width": info.width, "video_height": info.height}
        return cls(model_hash, config, str(video_path), stat.st_size, stat.st_mtime, **shape, decoder=decoder)

    def to_metadata(self) -> dict[bytes, bytes]:
        """The Parquet key-value metadata for this provenance."""
        return {METADATA_KEY: json.dumps(self.__dict__, sort_keys=True, default=str).encode()}


def keypoint_table(frames: np.ndarray, times: np.ndarray, peaks: np.ndarray, keypoint_names: Sequence[str]) -> pa.Table:
    """Long-format table from per-frame peaks of one instance.

    Args:
        frames: int64 (B,) frame indices.
        times: float64 (B,) seconds.
        peaks: float (B, K, 3) as (x, y, score) in image pixels.
        keypoint_names: the K names.

    Returns:
        A table of B * K rows in `SCHEMA`, frame-major (all keypoints of a frame together).
    """
    b, k = peaks.shape[:2]
    codes = np.tile(np.arange(k, dtype=np.int16), b)  # (B*K,)
    # Each column's dtype is SCHEMA's, so the table is in SCHEMA without a cast.
    return pa.table(
        {
            "frame": np.repeat(np.asarray(frames, dtype=np.int64), k),
            "time_s": np.repeat(np.asarray(times, dtype=np.float64), k),
            "instance": np.zeros(b * k, dtype=np.int16),
            "keypoint": pa.DictionaryArray.from_arrays(codes, pa.array(list(keypoint_names), pa.string())),
            "x": peaks[..., 0].reshape(-1).astype(np.float32),
            "y": peaks[..., 1].reshape(-1).astype(np.float32),
            "score": peaks[..., 2].reshape(-1).astype(np.float32),
        }
    )


def instances_table(
    frames: np.ndarray,
    times: np.ndarray,
    peaks: np.ndarray,
    keypoint_names: Sequence[str],
    instance_scores: np.ndarray,
    tracks: np.ndarray | None = None,
    swap_risk: np.ndarray | None = None,
) -> pa.Table:
    """Long-format table (`MULTI_ANIMAL_SCHEMA`) of several animals per frame.

    Args:
        frames: int64 (B,) frame indices.
        times: float64 (B,) seconds.
        peaks: float (B, I, K, 3) as (x, y, score) in image pixels, NaN in slots without an animal.
        keypoint_names: the K names.
        instance_scores: float (B, I) each animal's confidence, NaN in empty slots.
        tracks: str (B, I) or (I,) track names ("" untracked); default all "".
        swap_risk: bool (B, I); default all False.

    Returns:
        B * I * K rows, frame-major, then instance slot, then keypoint.
    """
    b, i, k = peaks.shape[:3]
    tracks = (
        np.full((b, i), "", dtype=object) if tracks is None else np.broadcast_to(np.asarray(tracks, object), (b, i))
    )
    risk = np.zeros((b, i), dtype=bool) if swap_risk is None else np.asarray(swap_risk, dtype=bool)
    names, codes = np.unique(tracks.astype(str), return_inverse=True)  # names sorted, codes (B * I,)
    return pa.table(
        {
            "frame": np.repeat(np.asarray(frames, dtype=np.int64), i * k),
            "time_s": np.repeat(np.asarray(times, dtype=np.float64), i * k),
            "instance": np.tile(np.repeat(np.arange(i, dtype=np.int16), k), b),
            "keypoint": pa.DictionaryArray.from_arrays(
                np.tile(np.arange(k, dtype=np.int16), b * i), pa.array(list(keypoint_names), pa.string())
            ),
            "x": peaks[..., 0].reshape(-1).astype(np.float32),
            "y": peaks[..., 1].reshape(-1).astype(np.float32),
            "score": peaks[..., 2].reshape(-1).astype(np.float32),
            "track": pa.DictionaryArray.from_arrays(
                np.repeat(codes.reshape(-1).astype(np.int16), k), pa.array(names.tolist(), pa.string())
            ),
            "instance_score": np.repeat(np.asarray(instance_scores, dtype=np.float32).reshape(-1), k),
            "swap_risk": np.repeat(risk.reshape(-1), k),
        },
        schema=MULTI_ANIMAL_SCHEMA,
    )


@dataclass(frozen=True)
class Instances:
    """One video's multi-animal rows as dense arrays over consecutive frames.

    Attributes:
        frames: int64 (F,) frame indices, consecutive from the first to the last in the table.
        times: float64 (F,) seconds (NaN for frames without rows).
        xy: float64 (F, I, K, 2) (x, y), NaN where no animal or no point.
        score: float64 (F, I, K) keypoint scores.
        instance_score: float64 (F, I).
        track: str (F, I) object, "" where no track.
        swap_risk: bool (F, I).
        keypoint_names: the K names.
    """

    frames: np.ndarray
    times: np.ndarray
    xy: np.ndarray
    score: np.ndarray
    instance_score: np.ndarray
    track: np.ndarray
    swap_risk: np.ndarray
    keypoint_names: tuple[str, ...]

    @property
    def present(self) -> np.ndarray:
        """Slots holding an animal (a finite point), bool (F, I)."""
        return np.isfinite(self.xy).all(axis=-1).any(axis=-1)

    @classmethod
    def from_table(
        cls, table: pa.Table | Any, keypoint_names: Sequence[str] | None = None, source: str | Path = "<table>"
    ) -> Instances:
        """Dense arrays from rows of one video (`MULTI_ANIMAL_SCHEMA`, or `SCHEMA`: one untracked instance).

        Raises:
            InputError: naming `source`, for missing columns, a keypoint not in `keypoint_names`;
                naming also the frame, for a (frame, instance, keypoint) given twice or a track
                name on two instances of one frame.
        """
        frame = table if not isinstance(table, pa.Table) else table.to_pandas()
        missing = [c for c in SCHEMA.names if c not in frame.columns]
        if missing:
            raise InputError(source, f"not a trajectory table: missing columns {missing}")
        keypoint = frame["keypoint"].astype(str).to_numpy()
        names = tuple(keypoint_names) if keypoint_names is not None else tuple(dict.fromkeys(keypoint))
        lookup = {name: j for j, name in enumerate(names)}
        unknown = sorted(set(keypoint) - set(lookup))
        if unknown:
            raise InputError(source, f"keypoint {unknown[0]!r} is not one of {list(names)}")
        frames = frame["frame"].to_numpy(np.int64)
        first = int(frames.min()) if len(frames) else 0
        n_frames = int(frames.max()) - first + 1 if len(frames) else 0
        slot = frame["instance"].to_numpy(np.int64)
        n_slots = int(slot.max()) + 1 if len(slot) else 0
        k = np.array([lookup[name] for name in keypoint], dtype=np.int64)
        row, column = frames - first, slot
        cell = (row * max(n_slots, 1) + column) * len(names) + k
        if len(cell) and np.bincount(cell).max() > 1:
            doubled = np.flatnonzero(cell == np.flatnonzero(np.bincount(cell) > 1)[0])[0]
            message = f"instance {int(column[doubled])}, keypoint {str(keypoint[doubled])!r} appears twice"
            raise InputError(source, message, f"frame {int(frames[doubled])}")
        xy = np.full((n_frames, n_slots, len(names), 2), np.nan)
        score = np.full((n_frames, n_slots, len(names)), np.nan)
        xy[row, column, k, 0], xy[row, column, k, 1] = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
        score[row, column, k] = frame["score"].to_numpy(float)
        times = np.full(n_frames, np.nan)
        times[row] = frame["time_s"].to_numpy(float)
        instance_score = np.full((n_frames, n_slots), np.nan)
        track = np.full((n_frames, n_slots), "", dtype=object)
        swap = np.zeros((n_frames, n_slots), dtype=bool)
        if "track" in frame.columns:
            instance_score[row, column] = frame["instance_score"].to_numpy(float)
            track[row, column] = frame["track"].astype(str).to_numpy()
            swap[row, column] = frame["swap_risk"].to_numpy(bool)
            _check_tracks_once_a_frame(track, first, source)
        else:  # single-animal rows: the mean keypoint score stands for the animal's
            counted = np.isfinite(score).sum(axis=-1)  # (F, I)
            instance_score = np.where(counted > 0, np.nansum(score, axis=-1) / np.maximum(counted, 1), np.nan)
        return cls(np.arange(first, first + n_frames), times, xy, score, instance_score, track, swap, names)

    def to_table(self) -> pa.Table:
        """The rows again (`instances_table`), frame-major."""
        peaks = np.concatenate([self.xy, self.score[..., None]], axis=-1)  # (F, I, K, 3)
        return instances_table(
            self.frames, self.times, peaks, self.keypoint_names, self.instance_score, self.track, self.swap_risk
        )


def write_atomic(table: pa.Table, path: str | Path, provenance: Provenance | None = None) -> None:
    """Write `table` to `path` through a temporary name and a rename."""
    if provenance is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **provenance.to_metadata()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance JSON stored in one trajectory file's metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in metadata:
        raise InputError(path, "no posecore provenance in the Parquet metadata")
    return json.loads(metadata[METADATA_KEY])


def aggregate_shards(
    shard_paths: Sequence[str | Path], n_frames: int, out_path: str | Path, *, start: int = 0
) -> pa.Table:
    """Join one video's shard files in frame order into one file, checking coverage (`join_shards`).

    The output keeps the provenance of the first shard.

    Raises:
        InputError: naming the shard and the frames when coverage is broken.
    """
    if not shard_paths:
        raise InputError(out_path, "no shard files to aggregate")
    joined = join_shards(shard_paths, n_frames, start=start)
    write_atomic(joined, out_path)
    return joined


def join_shards(shard_paths: Sequence[str | Path], n_frames: int, *, start: int = 0) -> pa.Table:
    """One video's shard files as one table in frame order, with the first shard's metadata.

    The shards must cover frames [start, n_frames) exactly: no gap, no overlap, every frame
    with the same number of rows.

    Raises:
        InputError: naming the shard and the frames when coverage is broken.
    """
    if not shard_paths:
        raise InputError("<shards>", "no shard files to join")
    tables = []
    expected_start = start
    for shard in sorted(map(Path, shard_paths), key=_first_frame):
        table = pq.read_table(shard)
        frames = table.column("frame").to_numpy()
        if len(frames) == 0:
            raise InputError(shard, "shard holds no rows")
        first, last = int(frames.min()), int(frames.max())
        if first != expected_start:
            kind = "overlap" if first < expected_start else "gap"
            raise InputError(shard, f"{kind}: shard starts at frame {first}, expected {expected_start}")
        counts = np.bincount(frames - first)
        if counts.min() != counts.max() or len(counts) != last - first + 1:
            raise InputError(shard, f"frames {first}..{last} do not all have the same number of rows")
        expected_start = last + 1
        tables.append(table)
    if expected_start != n_frames:
        raise InputError(shard_paths[-1], f"shards end at frame {expected_start}, the video has {n_frames} frames")
    # Shards are frame-major and now in frame order, so their concatenation is too.
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


def _first_frame(path: Path) -> int:
    frames = pq.read_table(path, columns=["frame"]).column("frame")
    return int(pc.min(frames).as_py()) if len(frames) else -1


def _check_tracks_once_a_frame(track: np.ndarray, first: int, source: str | Path) -> None:
    """Raise naming the frame when one track name is on two instances of it (`track` (F, I), "" for none)."""
    ordered = np.sort(track.astype(str), axis=1)
    twice = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != "")  # (F, I - 1)
    if twice.any():
        row, column = np.argwhere(twice)[0]
        name = str(ordered[row, column + 1])
        slots = np.flatnonzero(track[row] == name).tolist()
        raise InputError(source, f"track {name!r} is on two instances, {slots}", f"frame {first + row}")
