import cv2
import numpy as np
import pytest

from posecore.threed.camera import Camera, rodrigues, rotation_vector


def _camera(fisheye: bool) -> Camera:
    distortion = [0.05, -0.01, 0.002, -0.001] if fisheye else [-0.28, 0.09, 0.001, -0.0015, -0.01]
    matrix = [[800.0, 0, 640.3], [0, 805.0, 511.7], [0, 0, 1]]
    return Camera("cam", (1280, 1024), matrix, distortion, [0.1, -0.2, 0.05], [10.0, -20.0, 600.0], fisheye)


def _points(n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform([-250, -200, -100], [250, 200, 100], (n, 3))


@pytest.mark.parametrize("fisheye", [False, True])
def test_projection_matches_opencv(fisheye):
    camera = _camera(fisheye)
    points = _points()
    if fisheye:
        reference, _ = cv2.fisheye.projectPoints(
            points[:, None], camera.rotation, camera.translation, camera.matrix, camera.distortion
        )
    else:
        reference, _ = cv2.projectPoints(points, camera.rotation, camera.translation, camera.matrix, camera.distortion)
    np.testing.assert_allclose(camera.project(points), reference.reshape(-1, 2), atol=1e-6)


@pytest.mark.parametrize("fisheye", [False, True])
def test_undistort_inverts_projection(fisheye):
    camera = _camera(fisheye)
    points = _points()
    local = camera.to_camera(points)
    rays = camera.undistort(camera.project(points))
    np.testing.assert_allclose(rays, local[:, :2] / local[:, 2:], atol=1e-9)


def test_undistort_is_nan_where_the_distortion_folds_back():
    camera = Camera("cam", (1280, 1024), [[800.0, 0, 640], [0, 800, 512], [0, 0, 1]], [-0.5, 0, 0, 0, 0])
    # r_d = r (1 - 0.5 r^2) peaks at r = 0.816 (r_d = 0.544, 435 px from the centre): beyond, no inverse.
    rays = camera.undistort(np.array([[640.0 + 300, 512.0], [640.0 + 600, 512.0]]))
    assert np.isfinite(rays[0]).all() and np.isnan(rays[1]).all()


def test_points_behind_the_camera_project_to_nan():
    camera = _camera(False)
    behind = camera.centre - 100 * camera.rotation_matrix[2]  # 100 mm behind, on the optical axis
    assert np.isnan(camera.project(behind)).all()


def test_rodrigues_matches_opencv_and_inverts_near_0_and_180_degrees():
    rng = np.random.default_rng(1)
    vectors = [rng.normal(size=3) for _ in range(20)]
    vectors += [np.array([1e-14, 0, 0]), np.array([0, np.pi - 1e-9, 0]), np.array([np.pi / np.sqrt(2)] * 2 + [0])]
    for v in vectors:
        np.testing.assert_allclose(rodrigues(v), cv2.Rodrigues(v)[0], atol=1e-12)
        back = rotation_vector(rodrigues(v))
        np.testing.assert_allclose(rodrigues(back), rodrigues(v), atol=1e-9)


def test_bad_camera_parameters_are_refused_with_the_camera_named():
    with pytest.raises(ValueError, match=r"'top'.*5 distortion coefficients"):
        Camera("top", (640, 480), np.eye(3), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"'top'.*matrix"):
        Camera("top", (640, 480), np.eye(2), [0.1, 0.2, 0.0, 0.0, 0.0])
