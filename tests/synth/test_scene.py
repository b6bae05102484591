import numpy as np

from posecore.synth.animal import KEYPOINTS
from posecore.synth.render import OCCLUDER
from posecore.synth.scene import make_scene, plan_occlusions


def scene(seed=0, n_frames=60, rate=0.1):
    return make_scene(n_frames, 160, 128, 30.0, 0.0, rate, np.random.default_rng(seed))


def test_the_animal_is_drawn_at_its_keypoints():
    s = scene()
    for t, frame in enumerate(s.frames()):
        for k in np.flatnonzero(s.visible[t]):
            col, row = np.rint(s.keypoints[t, k]).astype(int)
            assert np.abs(frame[row, col].astype(float) - s.background[row, col]).sum() > 30, (t, KEYPOINTS[k])


def test_hidden_keypoints_are_under_the_occluder():
    s = scene(rate=0.2)
    hidden = np.argwhere(~s.visible)  # (n, 2) frame, keypoint
    assert len(hidden) > 0
    frames = list(s.frames())
    for t, k in hidden:
        occluder = s.occluders[t]
        distance = np.hypot(*(s.keypoints[t, k] - [occluder.x, occluder.y]))
        assert distance < occluder.radius
        col, row = np.rint(s.keypoints[t, k]).astype(int)
        if distance < occluder.radius - 2:  # well inside: nothing but the occluder's colour
            np.testing.assert_allclose(frames[t][row, col], OCCLUDER, atol=2)


def test_occlusions_are_brief_and_as_frequent_as_asked():
    keypoints = np.full((20000, len(KEYPOINTS), 2), 80.0)
    plan = plan_occlusions(keypoints, 0.02, 1.0, np.random.default_rng(0))
    on = np.array([o is not None for o in plan])
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, on.astype(int), 0])).reshape(-1, 2), axis=1)
    assert runs.min() >= 1 and runs.max() <= 8  # back-to-back occlusions may merge, rarely
    assert 0.015 < len(starts) / (~on).sum() < 0.025


def test_a_scene_is_reproducible():
    a, b, c = scene(1), scene(1), scene(2)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(np.stack(list(a.frames())), np.stack(list(b.frames())))
    assert np.abs(a.keypoints - c.keypoints).max() > 1
