import json

import numpy as np
import pytest

from posecore.errors import InputError
from posecore.threed.files import calibrate_rig, read_corners, write_outputs
from posecore.threed.rig import read_calibration


def test_outputs_read_back(tmp_path, calibration):
    write_outputs(calibration, tmp_path / "calibration.toml", tmp_path / "corners.parquet", tmp_path / "summary.json")
    rig = read_calibration(tmp_path / "calibration.toml")
    assert rig.names == calibration.rig.names and rig.metadata["error"] == calibration.summary["rms_px"]
    assert len(rig.board_region("cam0")) >= 3
    corners, residuals, inliers, cameras, sizes = read_corners(tmp_path / "corners.parquet", 70)
    np.testing.assert_array_equal(corners, calibration.detections.corners)
    np.testing.assert_array_equal(residuals, calibration.residuals)
    np.testing.assert_array_equal(inliers, calibration.inliers)
    assert cameras == calibration.rig.names and sizes == [(1280, 1024)] * 4
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rms_px"] == calibration.summary["rms_px"] and set(summary["cameras"]) == set(cameras)
    first = [(tmp_path / n).read_bytes() for n in ("calibration.toml", "corners.parquet", "summary.json")]
    write_outputs(calibration, tmp_path / "calibration.toml", tmp_path / "corners.parquet", tmp_path / "summary.json")
    assert first == [(tmp_path / n).read_bytes() for n in ("calibration.toml", "corners.parquet", "summary.json")]


def test_missing_calibration_input_is_named(tmp_path):
    rig = {
        "board": {"type": "charuco", "squares_x": 5, "squares_y": 7, "square_mm": 40.0, "marker_mm": 30.0},
        "cameras": {"a": str(tmp_path / "a" / "*.png"), "b": str(tmp_path / "b.mp4")},
    }
    with pytest.raises(
        InputError, match=r"a/\*.png: camera 'a': calibration input not found \(config: threed.rigs.x.cameras.a\)"
    ):
        calibrate_rig(rig, "config: threed.rigs.x")
    rig["calibration"] = {"distortion": "barrel"}
    with pytest.raises(InputError, match=r"config: threed.rigs.x.calibration: calibration: distortion must be one of"):
        calibrate_rig(rig, "config: threed.rigs.x")
