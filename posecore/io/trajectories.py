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
    """Join one video's shard files in frame order into one file, checking coverage.

    The shards must cover frames [start, n_frames) exactly: no gap, no overlap, every frame
    with the same set of keypoints. The output keeps the provenance of the first shard.

    Raises:
        InputError: naming the shard and the frames when coverage is broken.
    """
    if not shard_paths:
        raise InputError(out_path, "no shard files to aggregate")
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
    joined = pa.concat_tables(tables).unify_dictionaries().combine_chunks()
    write_atomic(joined, out_path)
    return joined


def _first_frame(path: Path) -> int:
    frames = pq.read_table(path, columns=["frame"]).column("frame")
    return int(pc.min(frames).as_py()) if len(frames) else -1
