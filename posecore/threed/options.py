"""The 3D stage's options: frozen config dataclasses, each validated beside its definition.

`CalibrationConfig` (how a rig is calibrated), `TriangulationConfig` (how a session is
triangulated) and its `RefineConfig`, built from the workflow config's mappings by
`from_mapping`, which names the config and the bad key. This module imports nothing heavy, so
the workflow checks the config when it loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from posecore.errors import InputError

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any], source: str, what: str) -> T:
    """`cls(**values)`, with an unknown key or a bad value reported as an `InputError` naming `source`.

    Args:
        cls: a dataclass.
        values: its fields' values (missing ones take their defaults).
        source: where the mapping comes from, e.g. "config/config.yaml: threed.rigs.arena".
        what: the mapping's name in messages ("board", "calibration", ...).
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(source, f"unknown {what} keys {unknown} (known: {sorted(known)})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise InputError(source, f"{what}: {error}") from None


Distortion = Literal["none", "radial", "radial_tangential", "full"]
DISTORTION_TERMS = {  # which of (k1, k2, p1, p2, k3) are adjusted
    "none": (False,) * 5,
    "radial": (True, True, False, False, False),
    "radial_tangential": (True, True, True, True, False),
    "full": (True,) * 5,
}


@dataclass(frozen=True)
class CalibrationConfig:
    """How a rig is calibrated.

    Attributes:
        fisheye: OpenCV's fisheye model (k1..k4, all adjusted) instead of the pinhole one.
        distortion: pinhole only: which terms are adjusted: "none", "radial" (k1, k2),
            "radial_tangential" (k1, k2, p1, p2) or "full" (k1, k2, p1, p2, k3).
        fix_principal_point: keep the principal point at the image centre.
        min_corners: a view is used when it shows at least this many corners.
        max_intrinsic_views: views per camera given to OpenCV for the first estimate of its lens.
        outlier_sigmas: corners whose residual exceeds this many robust standard deviations are dropped.
        min_outlier_px: ... but only when it exceeds this many pixels too.
        reference_camera: the camera whose frame is the world's (None: the first).
        origin: "camera": the reference camera's frame; "board": the board's in the frame seen by
            most cameras (x, y on the board, z through it).
        max_frames: from calibration videos, how many frames to keep at most.
        max_candidates: from calibration videos, how many evenly spaced frames to look at.
    """

    fisheye: bool = False
    distortion: Distortion = "radial_tangential"
    fix_principal_point: bool = False
    min_corners: int = 8
    max_intrinsic_views: int = 30
    outlier_sigmas: float = 5.0
    min_outlier_px: float = 1.0
    reference_camera: str | None = None
    origin: Literal["camera", "board"] = "camera"
    max_frames: int = 100
    max_candidates: int = 400

    def __post_init__(self) -> None:
        if self.distortion not in DISTORTION_TERMS:
            raise ValueError(f"distortion must be one of {list(DISTORTION_TERMS)}, got {self.distortion!r}")
        if self.origin not in ("camera", "board"):
            raise ValueError(f"origin must be 'camera' or 'board', got {self.origin!r}")
        if self.min_corners < 4:
            raise ValueError(f"min_corners must be at least 4 (a board pose needs 4 points), got {self.min_corners}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> CalibrationConfig:
        """The config of a mapping (a rig's `calibration` in the workflow config); errors name `source`."""
        return from_mapping(cls, d, source, "calibration")


@dataclass(frozen=True)
class RefineConfig:
    """Weights of the refinement's terms (see the module docstring).

    Attributes:
        reprojection_px: the scale of the reprojection term and of its soft-L1 loss, pixels.
        smooth_mm: the scale of a keypoint's acceleration, mm per frame squared.
        limb_mm: the scale of a skeleton edge's deviation from its median length, mm (0: no limb term).
        iterations: Gauss-Newton steps.
        chunk_frames: frames solved at once.
        overlap_frames: frames shared by consecutive chunks (each keeps its half).
    """

    reprojection_px: float = 2.0
    smooth_mm: float = 1.0
    limb_mm: float = 2.0
    iterations: int = 5
    chunk_frames: int = 1000
    overlap_frames: int = 20

    def __post_init__(self) -> None:
        if not (self.reprojection_px > 0 and self.smooth_mm > 0 and self.limb_mm >= 0):
            raise ValueError("reprojection_px and smooth_mm must be positive, limb_mm at least 0")
        if not 0 <= 2 * self.overlap_frames < self.chunk_frames:
            raise ValueError("overlap_frames must be less than half of chunk_frames")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> RefineConfig:
        """The config of a mapping; errors name `source`."""
        return from_mapping(cls, d, source, "refinement")


@dataclass(frozen=True)
class TriangulationConfig:
    """How sessions are triangulated.

    Attributes:
        min_score: 2D points scoring below this are not used.
        threshold_px: a view agrees with a point when it reprojects within this many pixels.
        max_offset_frames: time shifts between cameras tried when looking for unsynchronised views.
        refine: run the spatiotemporal refinement (`posecore.threed.refine`) after triangulating.
        refinement: its weights.
    """

    min_score: float = 0.2
    threshold_px: float = 20.0
    max_offset_frames: int = 10
    refine: bool = False
    refinement: RefineConfig = field(default_factory=RefineConfig)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> TriangulationConfig:
        """The config of a mapping (the workflow config's `threed.triangulation`); errors name `source`."""
        values = {**d, "refinement": RefineConfig.from_dict(d.get("refinement", {}), source)}
        return from_mapping(cls, values, source, "triangulation")
