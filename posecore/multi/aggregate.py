"""A video's shards of untracked detections joined and tracked into its trajectory file.

`track_shards(shard_paths, n_frames, out_path, tracking)` is what aggregating a video's shards
is for a top-down model (`posecore.infer.shards.join_video` calls it when the shards hold
several animals per frame): the shards are joined with the single-animal path's coverage
checks (`posecore.io.trajectories.join_shards`), the whole video is tracked at once
(`posecore.multi.tracking.track_video`), and the tracks are written atomically with the first
shard's provenance, plus their names and the tracker's settings (`trajectories.track_metadata`).

The tracker's settings are the caller's, or else the workflow config that made the shards
(their provenance's `animals` and `tracking` sections, `tracking_of`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.multi.config import tracker_config
from posecore.multi.tracking import TrackerConfig, track_video


def track_shards(
    shard_paths: Sequence[str | Path],
    n_frames: int,
    out_path: str | Path,
    tracking: TrackerConfig | None = None,
    *,
    start: int = 0,
) -> pa.Table:
    """Join a video's detection shards (frames [start, n_frames)), track them, write the trajectory file.

    Args:
        shard_paths: the video's shard files (`MULTI_ANIMAL_SCHEMA`, untracked).
        n_frames: one past the last frame the shards must cover.
        out_path: the trajectory file.
        tracking: the tracker's settings; None: from the shards' provenance (`tracking_of`).
        start: the first frame the shards must cover.

    Returns:
        The tracked rows as written: one instance per track, `track` its name, `swap_risk` flags.

    Raises:
        InputError: the shards do not cover the frames (naming the shard), or no tracking
            settings are given nor recorded in them.
    """
    if not shard_paths:
        raise InputError(out_path, "no shard files to aggregate")
    joined = trajectories.join_shards(shard_paths, n_frames, start=start)
    metadata = dict(joined.schema.metadata or {})
    config = tracking or tracking_of(metadata, shard_paths[0])
    tracked = track_video(joined, config, source=str(shard_paths[0]))
    metadata.update(trajectories.track_metadata(_track_names(tracked), dataclasses.asdict(config)))
    tracked = tracked.replace_schema_metadata(metadata)
    trajectories.write_atomic(tracked, out_path)
    return tracked


def tracking_of(metadata: Mapping[bytes, bytes], source: str | Path) -> TrackerConfig:
    """The tracker's settings recorded in a shard's provenance: its config's `animals` and `tracking` sections.

    Raises:
        InputError: naming `source`, when the provenance has no such sections (shards not made
            by the workflow: give the settings instead) or they are not valid.
    """
    raw = metadata.get(trajectories.METADATA_KEY)
    config = json.loads(raw).get("config", {}) if raw else {}
    if not isinstance(config, dict) or "animals" not in config:
        raise InputError(
            source,
            "detections of several animals, but neither tracking settings given nor the workflow's "
            "animals and tracking sections in the shard's provenance",
        )
    return tracker_config(config["animals"], config.get("tracking", {}), f"{source} (provenance config)")


def _track_names(tracked: pa.Table) -> list[str]:
    """Each instance number's track name, as its rows give it."""
    if not tracked.num_rows:
        return []
    rows = tracked.select(["instance", "track"]).to_pandas()
    rows = rows[rows["track"].astype(str) != ""].drop_duplicates("instance")
    named = dict(zip(rows["instance"].astype(int), rows["track"].astype(str), strict=True))
    return [named.get(i, "") for i in range(int(tracked.column("instance").to_numpy().max()) + 1)]
