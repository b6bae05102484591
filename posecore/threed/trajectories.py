"""3D keypoint trajectories in Parquet (docs/design.md, "3D").

Long format like the 2D trajectories, one row per (session, frame, instance, keypoint) in
`SCHEMA`; the `session` column comes from the hive partition folder (`session=<name>/`), so
`pandas.read_parquet("results/trajectories3d/<model>")` reads every session as one table.
Columns: `x`, `y`, `z` in millimetres in the calibration's world frame (its reference camera's
frame, or the board's: the file metadata says which); `reprojection_px`, the mean distance in
pixels between the point's projection and the views it was made from; `n_cameras`, how many
views it was made from and `n_views`, how many there were (a view left out disagreed with the
others); `cameras`, their names joined by "+"; `score`, the mean 2D score of the views used;
`outside_board`, whether a view used lies outside the image region where the board was seen
during calibration (the lens model was never fitted there: treat such points with care).
Points that no two views agreed on are NaN.

The file metadata (key `posecore`) holds the provenance: the calibration file and its hash,
the 2D trajectory files and their own provenance (the model's hash), the frame offsets, the
options, the posecore version, and the session's checks (the suspected time offsets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.io.trajectories import METADATA_KEY, write_atomic
from posecore.io.trajectories import SCHEMA as TRAJECTORIES_2D

SCHEMA = pa.schema(
    [
        *(TRAJECTORIES_2D.field(name) for name in ("frame", "time_s", "instance", "keypoint")),
        pa.field("x", pa.float32()),
        pa.field("y", pa.float32()),
        pa.field("z", pa.float32()),
        pa.field("reprojection_px", pa.float32()),
        pa.field("n_cameras", pa.int8()),
        pa.field("n_views", pa.int8()),
        pa.field("cameras", pa.dictionary(pa.int16(), pa.string())),
        pa.field("score", pa.float32()),
        pa.field("outside_board", pa.bool_()),
    ]
)
"""The columns of a 3D trajectory file; frame, time_s, instance and keypoint as in the 2D files."""


def write_trajectories3d(table: pa.Table, path: str | Path, metadata: dict[str, Any]) -> None:
    """Write one session's 3D trajectories atomically, with `metadata` under the `posecore` key."""
    if table.schema.remove_metadata() != SCHEMA:
        raise ValueError(f"3D trajectory table does not have the 3D schema:\n{table.schema}")
    content = json.dumps(metadata, sort_keys=True, default=str).encode()
    write_atomic(table.replace_schema_metadata({METADATA_KEY: content}), path)


def read_metadata3d(path: str | Path) -> dict[str, Any]:
    """The `posecore` metadata of one 3D trajectory file."""
    metadata = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in metadata:
        raise InputError(path, "no posecore metadata in the Parquet file: not a posecore 3D trajectory file")
    return json.loads(metadata[METADATA_KEY])
