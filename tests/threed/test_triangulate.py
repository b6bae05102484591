import cv2
import numpy as np

from posecore.synth.animal import KEYPOINTS, SWAP_PAIRS
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.threed.triangulate import triangulate, triangulate_linear


def _animal_views(rig, n_frames=200, seed=0):
    animal = simulate_3d(n_frames, 30.0, np.random.default_rng(seed))
    return animal.keypoints.reshape(-1, 3), project_views(rig, animal.keypoints).reshape(len(rig.cameras), -1, 2)


def test_exact_views_give_the_exact_points(true_rig):
    truth, views = _animal_views(true_rig)
    result = triangulate(true_rig, views)
    np.testing.assert_allclose(result.points, truth, atol=1e-6)
    assert (result.n_cameras == 4).all() and np.nanmax(result.reprojection_px) < 1e-6


def test_two_views_agree_with_opencv_triangulate_points(true_rig):
    truth, views = _animal_views(true_rig, 50)
    pair = true_rig.subset(["cam0", "cam2"])
    rays = pair.undistort(views[[0, 2]])
    exact = cv2.triangulatePoints(pair.projections[0], pair.projections[1], rays[0].T, rays[1].T)
    np.testing.assert_allclose((exact[:3] / exact[3]).T, truth, atol=1e-6)
    # With noise both are DLT solutions, weighted slightly differently (ours rescales the world).
    noisy = rays + np.random.default_rng(0).normal(0, 1e-3, rays.shape)  # about 1 px
    reference = cv2.triangulatePoints(pair.projections[0], pair.projections[1], noisy[0].T, noisy[1].T)
    reference = (reference[:3] / reference[3]).T
    ours = triangulate_linear(pair.projections, noisy, np.ones(noisy.shape[:2]))
    error_ours = np.linalg.norm(ours - truth, axis=1)
    error_reference = np.linalg.norm(reference - truth, axis=1)
    assert np.median(np.linalg.norm(ours - reference, axis=1)) < 0.2 * np.median(error_reference)
    assert 0.8 < np.median(error_ours) / np.median(error_reference) < 1.25


def test_one_wrong_view_is_left_out(true_rig):
    truth, views = _animal_views(true_rig, 300)
    rng = np.random.default_rng(1)
    noisy = views + rng.normal(0, 2.0, views.shape)
    clean = triangulate(true_rig, noisy)
    wrong = noisy.copy()
    gross = rng.uniform(size=len(truth)) < 0.1
    angle = rng.uniform(0, 2 * np.pi, len(truth))
    wrong[1, gross] += (rng.uniform(50, 200, len(truth)) * np.stack([np.cos(angle), np.sin(angle)]))[:, gross].T
    result = triangulate(true_rig, wrong)
    assert not result.used[1, gross].any()
    assert (result.n_cameras[gross] == 3).all()
    error_clean = np.linalg.norm(clean.points - truth, axis=1)
    error = np.linalg.norm(result.points - truth, axis=1)
    assert np.median(error) < 1.2 * np.median(error_clean)
    # Without the robust step the same data are much worse where the view is wrong.
    plain = triangulate_linear(true_rig.projections, true_rig.undistort(wrong), np.ones(wrong.shape[:2]))
    assert np.median(np.linalg.norm(plain - truth, axis=1)[gross]) > 5 * np.median(error[gross])


def test_a_left_right_swap_in_one_view_is_left_out(true_rig):
    truth, views = _animal_views(true_rig, 100)
    k = len(KEYPOINTS)
    swapped = views.reshape(4, -1, k, 2).copy()
    left, right = (KEYPOINTS.index(name) for name in SWAP_PAIRS[0])
    swapped[2, :, [left, right]] = swapped[2, :, [right, left]]
    result = triangulate(true_rig, swapped.reshape(4, -1, 2), threshold_px=5.0)
    ears = np.zeros((len(truth) // k, k), dtype=bool)
    ears[:, [left, right]] = True
    ears = ears.ravel()
    assert not result.used[2, ears].any()
    np.testing.assert_allclose(result.points[ears], truth[ears], atol=1e-6)


def test_scores_low_views_and_disagreeing_pairs(true_rig):
    truth, views = _animal_views(true_rig, 20)
    scores = np.full(views.shape[:2], 0.9)
    scores[0] = 0.1
    result = triangulate(true_rig, views, scores, min_score=0.2)
    assert not result.used[0].any() and not result.seen[0].any()
    np.testing.assert_allclose(result.score, 0.9)
    # Two views only, one 100 px off its epipolar line: no point, rather than a guess.
    two = true_rig.subset(["cam0", "cam1"])
    pair = views[:2].copy()
    farther = truth + 50.0 * (truth - two.cameras[0].centre) / np.linalg.norm(truth - two.cameras[0].centre)
    along = two.cameras[1].project(farther) - pair[1]  # along the epipolar line in cam1
    across = np.stack([-along[:, 1], along[:, 0]], axis=1) / np.linalg.norm(along, axis=1, keepdims=True)
    pair[1, :5] += 100.0 * across[:5]
    result = triangulate(two, pair)
    assert np.isnan(result.points[:5]).all() and np.isfinite(result.points[5:]).all()
    assert (result.n_cameras[:5] == 0).all()
