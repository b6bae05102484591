import numpy as np
import pytest

from posecore.errors import InputError
from posecore.synth.rig import SYNTH_BOARD, board_views, make_rig
from posecore.threed.calibrate import calibrate
from posecore.threed.compare import rig_errors, similarity
from posecore.threed.options import CalibrationConfig
from posecore.threed.rig import write_calibration
from posecore.threed.triangulate import triangulate

from .conftest import detections_of


def test_calibration_recovers_the_synthetic_rig(true_rig, views, calibration):
    summary = calibration.summary
    # 0.2 px of noise per coordinate: the true RMS of the residual vectors is about 0.2 * sqrt(2).
    assert 0.25 < summary["rms_px"] < 0.31
    assert summary["dropped"] == 0
    transform = similarity(calibration.board_points().reshape(-1, 3), views.points().reshape(-1, 3))
    assert abs(transform.scale - 1) < 1e-3  # millimetres, from the board's square size
    for name, errors in rig_errors(calibration.rig, true_rig, transform).items():
        assert errors["centre_mm"] < 3.0, name
        assert errors["angle_deg"] < 0.2, name
        assert abs(errors["focal_rel"]) < 0.003, name
    # The exact projections triangulated through the calibration land on the true corners.
    n_cameras = len(true_rig.cameras)
    points = triangulate(calibration.rig, views.truth.reshape(n_cameras, -1, 2)).points
    error = np.linalg.norm(transform(points) - views.points().reshape(-1, 3), axis=1)
    assert np.nanmax(error) < 0.1
    assert summary["edge_error_median_mm"] < 0.15


def test_outlier_corners_are_dropped(true_rig):
    views = board_views(true_rig, SYNTH_BOARD, 30, noise_px=0.2, seed=5)
    corners = views.corners.copy()
    rng = np.random.default_rng(0)
    c, f, k = np.nonzero(np.isfinite(corners[..., 0]))
    bad = rng.choice(len(c), 40, replace=False)
    corners[c[bad], f[bad], k[bad]] += rng.choice([-1, 1], (40, 2)) * rng.uniform(8, 20, (40, 2))
    result = calibrate(SYNTH_BOARD, detections_of(true_rig, corners), CalibrationConfig())
    assert not result.inliers[c[bad], f[bad], k[bad]].any()
    assert result.summary["dropped"] >= 40
    assert result.summary["rms_px"] < 0.31 < result.summary["rms_all_px"]
    for camera, truth in zip(result.rig.cameras, true_rig.cameras, strict=True):
        assert abs(camera.focal / truth.focal - 1) < 0.003


def test_two_runs_write_the_same_file(tmp_path, true_rig, views, calibration):
    again = calibrate(SYNTH_BOARD, detections_of(true_rig, views.corners), CalibrationConfig())
    write_calibration(calibration.rig, tmp_path / "a.toml")
    write_calibration(again.rig, tmp_path / "b.toml")
    assert (tmp_path / "a.toml").read_bytes() == (tmp_path / "b.toml").read_bytes()


def test_fisheye_and_board_origin():
    rig = make_rig(3, seed=4)
    fisheye = []
    for camera in rig.cameras:  # the same lenses, described by the fisheye model
        fisheye.append(type(camera)(camera.name, camera.size, camera.matrix, [0.02, -0.01, 0.0, 0.0],
                                    camera.rotation, camera.translation, True))  # fmt: skip
    rig = type(rig)(tuple(fisheye))
    views = board_views(rig, SYNTH_BOARD, 30, noise_px=0.2, seed=1)
    result = calibrate(SYNTH_BOARD, detections_of(rig, views.corners), CalibrationConfig(fisheye=True, origin="board"))
    assert all(c.fisheye and len(c.distortion) == 4 for c in result.rig.cameras)
    assert result.summary["rms_px"] < 0.31
    assert result.rig.metadata["origin"] == "board"
    # In the board's frame the board of some frame lies at z = 0 with its corners on the grid.
    on_grid = np.abs(result.board_points() - SYNTH_BOARD.object_points).max(axis=(1, 2))
    assert np.nanmin(on_grid) < 1e-6


def test_a_camera_that_never_saw_the_board_is_named(true_rig, views):
    corners = views.corners.copy()
    corners[2] = np.nan
    with pytest.raises(InputError, match=r"cam2.mp4: camera 'cam2': the board .* was found in 0 of its 60"):
        calibrate(SYNTH_BOARD, detections_of(true_rig, corners), CalibrationConfig())


def test_cameras_without_overlap_are_named(true_rig, views):
    corners = views.corners.copy()
    # cam0 and cam1 see the board only in the first half of the frames, cam2 and cam3 in the second.
    corners[:2, 30:] = np.nan
    corners[2:, :30] = np.nan
    with pytest.raises(InputError, match=r"cameras \['cam2', 'cam3'\] cannot be joined to the rig.*cam0-cam2: 0"):
        calibrate(SYNTH_BOARD, detections_of(true_rig, corners), CalibrationConfig())
