import numpy as np

from posecore.synth.animal import KEYPOINTS
from posecore.synth.animal3d import project_views, render_view, simulate_3d
from posecore.synth.rig import SYNTH_BOARD, board_views, make_rig


def test_cameras_look_at_the_arena_from_around_it():
    rig = make_rig(4, seed=0)
    for camera in rig.cameras:
        centre = camera.project(np.array([0.0, 0.0, 40.0]))
        assert np.allclose(centre, camera.matrix[:2, 2], atol=1.0)  # the arena's centre is on the optical axis
        assert camera.centre[2] > 300 and 500 < np.hypot(*camera.centre[:2]) < 600
    azimuths = np.sort([np.degrees(np.arctan2(c.centre[1], c.centre[0])) % 360 for c in rig.cameras])
    assert np.diff(azimuths).min() > 50


def test_board_views_are_the_projections_of_the_board_corners():
    rig = make_rig(3, seed=1)
    views = board_views(rig, SYNTH_BOARD, 20, noise_px=0.0, seed=2)
    points = views.points()  # (F, N, 3)
    for c, camera in enumerate(rig.cameras):
        seen = np.isfinite(views.truth[c, ..., 0])
        assert seen.mean() > 0.5
        np.testing.assert_allclose(views.truth[c][seen], camera.project(points)[seen])


def test_the_animal_is_drawn_where_its_keypoints_project():
    rig = make_rig(2, width=320, height=256, seed=0)
    animal = simulate_3d(5, 30.0, np.random.default_rng(0))
    assert animal.keypoints.shape == (5, len(KEYPOINTS), 3) and (animal.keypoints[..., 2] > 0).all()
    views = project_views(rig, animal.keypoints)
    frames = list(render_view(rig, animal, 1, noise_std=0.0))
    # The same walk 5 m away, out of the picture: the background alone.
    background = list(render_view(rig, type(animal)(animal.points + np.array([5e3, 0, 0]), 30.0), 1, noise_std=0.0))
    for t in range(5):
        x, y = np.rint(views[1, t, KEYPOINTS.index("neck")]).astype(int)
        assert np.abs(frames[t][y, x].astype(int) - background[t][y, x]).sum() > 30
