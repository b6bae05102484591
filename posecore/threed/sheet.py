"""Sessions of cameras in the video sheet, and the rigs of the workflow config.

The sheet's optional columns `session`, `camera`, `frame_offset` and `rig` group videos into
sessions: the videos of one session are synchronised views of one scene, one per camera of
the rig that filmed it (`rig` may be left empty when the config has one rig). A video without
a session is a single-camera video, as before. `frame_offset` counts the frames a camera
recorded before the session's first frame (0 when the cameras were started together).
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from posecore.errors import InputError
from posecore.threed.detection import IMAGE_SUFFIXES, natural_key


@dataclass(frozen=True)
class SessionRow:
    """One camera's video of a session: camera name, video name, frame offset."""

    camera: str
    video: str
    offset: int


@dataclass(frozen=True)
class SessionPlan:
    """A session of the sheet: its rig and its views, in the sheet's order."""

    rig: str
    views: tuple[SessionRow, ...]


def sessions_of_sheet(
    rows: Sequence[Mapping[str, Any]], rigs: Mapping[str, Any], source: str
) -> dict[str, SessionPlan]:
    """The sessions of a video sheet's rows, checked against the config's rigs.

    Args:
        rows: the sheet's rows (dicts with `video` and optionally `session`, `camera`,
            `frame_offset`, `rig`; empty strings for empty cells).
        rigs: the config's `threed.rigs`, by name.
        source: the sheet's path, for messages.

    Raises:
        InputError: a session with one camera, a camera twice in a session, a row without its
            camera, a session without a rig or with an unknown one, a camera the rig does not have.
    """
    sessions: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        name = str(row.get("session", "") or "")
        if name:
            sessions.setdefault(name, []).append(row)
        elif row.get("camera"):
            raise InputError(
                source, f"video {row['video']!r} names a camera but no session", where=f"video {row['video']}"
            )
    plans = {}
    for name, members in sessions.items():
        where = f"session {name}"
        no_camera = [r["video"] for r in members if not r.get("camera")]
        if no_camera:
            raise InputError(source, f"videos {no_camera} of session {name!r} name no camera", where=where)
        cameras = [str(r["camera"]) for r in members]
        if len(set(cameras)) != len(cameras):
            raise InputError(
                source,
                f"session {name!r} has camera(s) {sorted({c for c in cameras if cameras.count(c) > 1})} twice",
                where=where,
            )
        if len(members) < 2:
            raise InputError(
                source, f"session {name!r} has one camera ({cameras[0]}); 3D needs at least two", where=where
            )
        named = {str(r.get("rig") or "") for r in members} - {""}
        if len(named) > 1:
            raise InputError(source, f"the videos of session {name!r} name different rigs {sorted(named)}", where=where)
        if named:
            rig = named.pop()
        elif len(rigs) == 1:
            rig = next(iter(rigs))
        else:
            raise InputError(
                source,
                f"session {name!r} names no rig, and the config has {len(rigs)} ({sorted(rigs)}): "
                "fill its `rig` column",
                where=where,
            )
        if rig not in rigs:
            raise InputError(
                source, f"session {name!r}: no rig {rig!r} in the config's threed.rigs ({sorted(rigs)})", where=where
            )
        unknown = [c for c in cameras if c not in rigs[rig]["cameras"]]
        if unknown:
            raise InputError(
                source,
                f"session {name!r}: rig {rig!r} has cameras {list(rigs[rig]['cameras'])}, not {unknown}",
                where=where,
            )
        views = tuple(SessionRow(str(r["camera"]), str(r["video"]), int(r.get("frame_offset") or 0)) for r in members)
        plans[name] = SessionPlan(rig, views)
    return plans


def calibration_sources(rig: Mapping[str, Any]) -> dict[str, list[str] | str]:
    """Per camera of a rig config, its calibration images (a glob, expanded in natural order) or its video.

    A pattern that matches nothing stays as it is (as one "image"), so that the workflow reports it
    as a missing input instead of failing to load.
    """
    sources: dict[str, list[str] | str] = {}
    for camera, pattern in rig["cameras"].items():
        pattern = str(pattern)
        is_pattern = any(ch in pattern for ch in "*?[")
        if not is_pattern and not pattern.lower().endswith(IMAGE_SUFFIXES):
            sources[camera] = pattern
        else:
            sources[camera] = sorted(glob.glob(pattern), key=natural_key) or [pattern]
    return sources
