import numpy as np

from posecore.synth.animal import KEYPOINTS, SKELETON
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.threed.options import RefineConfig
from posecore.threed.refine import refine
from posecore.threed.triangulate import triangulate


def test_refinement_brings_noisy_points_closer_to_the_truth(true_rig):
    animal = simulate_3d(150, 30.0, np.random.default_rng(2)).keypoints  # (T, K, 3)
    views = project_views(true_rig, animal)
    noisy = views + np.random.default_rng(3).normal(0, 3.0, views.shape)
    c, t, k = noisy.shape[:3]
    result = triangulate(true_rig, noisy.reshape(c, -1, 2))
    points = result.points.reshape(t, k, 3)
    points[40:43, 2] = np.nan  # a gap stays a gap
    edges = [(KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in SKELETON]
    weights = result.used.reshape(c, t, k).astype(float)
    config = RefineConfig(chunk_frames=60, overlap_frames=10)  # several chunks and seams
    refined = refine(true_rig, points, noisy, weights, edges, config)
    before = np.nanmedian(np.linalg.norm(points - animal, axis=-1))
    after = np.nanmedian(np.linalg.norm(refined - animal, axis=-1))
    assert after < 0.8 * before
    assert np.isnan(refined[40:43, 2]).all() and np.isfinite(refined[43:, 2]).all()
