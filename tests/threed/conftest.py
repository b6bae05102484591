"""A synthetic 4-camera rig with exact ground truth, its board views and its calibration (made once)."""

from __future__ import annotations

import numpy as np
import pytest

from posecore.synth.rig import SYNTH_BOARD, BoardViews, board_views, make_rig
from posecore.threed.calibrate import Calibration, calibrate
from posecore.threed.detection import Detections
from posecore.threed.options import CalibrationConfig
from posecore.threed.rig import Rig


def detections_of(rig: Rig, corners: np.ndarray) -> Detections:
    """Detections as a perfect detector would give them: the board views' (C, F, N, 2) corners."""
    return Detections(
        tuple(rig.names),
        tuple(c.size for c in rig.cameras),
        tuple(f"frame {f}" for f in range(corners.shape[1])),
        corners,
        tuple((f"{name}.mp4",) for name in rig.names),
    )


@pytest.fixture(scope="session")
def true_rig() -> Rig:
    return make_rig(4, seed=0)


@pytest.fixture(scope="session")
def views(true_rig) -> BoardViews:
    """60 board poses, corners with 0.2 px Gaussian noise."""
    return board_views(true_rig, SYNTH_BOARD, 60, noise_px=0.2, seed=0)


@pytest.fixture(scope="session")
def calibration(true_rig, views) -> Calibration:
    return calibrate(SYNTH_BOARD, detections_of(true_rig, views.corners), CalibrationConfig())
