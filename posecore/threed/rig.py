"""A rig of calibrated cameras, and its calibration file in Anipose's `calibration.toml` layout.

The file has one table per camera, `[cam_0]`, `[cam_1]`, ..., each with `name`, `size`
(width, height), `matrix`, `distortions`, `rotation` (Rodrigues, world to camera) and
`translation` (millimetres: posecore calibrates in the board's units, and board sizes are given
in mm), plus `fisheye = true` for a fisheye camera, and a `[metadata]` table. This is what
aniposelib's `CameraGroup.dump` writes and `CameraGroup.load` reads, so Anipose and sleap-anipose
read posecore's calibrations and posecore reads theirs (tests/threed/test_rig.py builds one by hand
from that layout).

posecore's own keys go under `[metadata]`, which Anipose keeps but does not interpret: the
units, the reprojection error, the reference frame and, per camera, the outline of the image
region the board covered (`[metadata.board_region]`), outside which the distortion model was
never fitted. Floats are written with Python's shortest round-trip repr, in a fixed key order,
so the same calibration always gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.threed.camera import Camera, projection_matrices

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_CAMERA_KEY = re.compile(r"cam_(\d+)")


@dataclass(frozen=True, eq=False)
class Rig:
    """Cameras calibrated together, in one world frame (millimetres).

    Attributes:
        cameras: the cameras, in the calibration's order.
        metadata: the calibration file's `[metadata]` table (free-form; posecore's keys are
            described in the module docstring).
    """

    cameras: tuple[Camera, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")

    @property
    def names(self) -> list[str]:
        """The camera names, in order."""
        return [c.name for c in self.cameras]

    def camera(self, name: str) -> Camera:
        """The camera called `name`."""
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"no camera {name!r} in the rig (it has {self.names})")

    def subset(self, names: Sequence[str]) -> Rig:
        """The rig's cameras called `names`, in that order."""
        return Rig(tuple(self.camera(n) for n in names), self.metadata)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) to pixels in every camera: (C, ..., 2)."""
        return np.stack([c.project(points) for c in self.cameras])

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (C, ..., 2), one slice per camera, to normalised ray coordinates (C, ..., 2)."""
        return np.stack([c.undistort(p) for c, p in zip(self.cameras, pixels, strict=True)])

    @property
    def projections(self) -> np.ndarray:
        """float64 (C, 3, 4) [R | t] per camera (for normalised, undistorted coordinates)."""
        return projection_matrices(self.cameras)

    def board_region(self, name: str) -> np.ndarray | None:
        """The outline (N, 2) pixels of the image region where the board was seen, or None."""
        region = self.metadata.get("board_region", {}).get(name)
        return None if region is None else np.asarray(region, dtype=np.float64).reshape(-1, 2)


def read_calibration(path: str | Path) -> Rig:
    """Read a calibration.toml (Anipose's layout, posecore's or Anipose's own).

    Raises:
        InputError: naming the file and the table or key that is missing or malformed.
    """
    path = Path(path)
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such calibration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not a TOML file ({error})") from None
    keys = sorted((int(m.group(1)), k) for k in tables if (m := _CAMERA_KEY.fullmatch(k)))
    if not keys:
        raise InputError(path, "no camera tables ([cam_0], [cam_1], ...) in the calibration")
    cameras = []
    for _, key in keys:
        table = tables[key]
        missing = [k for k in ("name", "size", "matrix", "distortions", "rotation", "translation") if k not in table]
        if missing:
            raise InputError(path, f"missing keys {missing}", where=f"[{key}]")
        try:
            cameras.append(
                Camera(
                    name=str(table["name"]),
                    size=tuple(table["size"]),
                    matrix=table["matrix"],
                    distortion=table["distortions"],
                    rotation=table["rotation"],
                    translation=table["translation"],
                    fisheye=bool(table.get("fisheye", False)),
                )
            )
        except (ValueError, TypeError) as error:
            raise InputError(path, str(error), where=f"[{key}]") from None
    try:
        return Rig(tuple(cameras), dict(tables.get("metadata", {})))
    except ValueError as error:
        raise InputError(path, str(error)) from None


def write_calibration(rig: Rig, path: str | Path) -> None:
    """Write the rig as a calibration.toml that Anipose reads, atomically and byte-reproducibly."""
    lines: list[str] = []
    for index, camera in enumerate(rig.cameras):
        lines.append(f"[cam_{index}]")
        lines.extend(f"{key} = {_value(value)}" for key, value in camera.to_dict().items())
        lines.append("")
    lines.extend(_table("metadata", rig.metadata))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def _table(name: str, table: Mapping[str, Any]) -> list[str]:
    """A TOML table and its sub-tables, keys in the order given."""
    lines = [f"[{name}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, Mapping):
            nested.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    lines.append("")
    for key, value in nested:
        lines.extend(_table(f"{name}.{_key(key)}", value))
    return lines


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _value(key)


def _value(value: Any) -> str:
    """One TOML value: floats as their shortest round-trip repr, arrays and strings as TOML has them."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to a calibration file")
