from pathlib import Path

import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.io.sleap_tracks import read_slp_instances
from posecore.io.trajectories import Instances
from posecore.multi.mot import FrameMatches, pose_distances, tracking_scores
from posecore.multi.tracking import TrackerConfig, track_poses, track_video
from posecore.synth.social import SocialConfig, make_social_scene

MOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sleap-mot-2mice"
SCENE = SocialConfig(n_animals=3, n_frames=600, n_encounters=20, width=320, height=320, body_scale=1.2, seed=11)


def _detections(scene, rng: np.random.Generator, noise: float = 1.0, drop: float = 0.03):
    """A detector's view of a social scene: noisy visible keypoints, slots in random order, some animals missed."""
    keypoints = scene.keypoints  # (T, A, K, 2)
    n_frames, n_animals = keypoints.shape[:2]
    xy = keypoints + rng.normal(0, noise, keypoints.shape)
    xy[~scene.visible] = np.nan
    missed = rng.random((n_frames, n_animals)) < drop
    xy[missed] = np.nan
    order = np.argsort(rng.random((n_frames, n_animals)), axis=1)  # detection slots shuffled per frame
    xy = np.take_along_axis(xy, order[..., None, None], axis=1)
    score = np.where(np.isfinite(xy[..., 0]), 0.9, np.nan)
    return xy, score, np.where(np.isfinite(xy[..., 0]).any(-1), 0.9, np.nan), order


def _scores(truth_xy: np.ndarray, found: Instances) -> object:
    frames = []
    for f in range(len(truth_xy)):
        hyp = np.flatnonzero(found.present[f])
        distances = pose_distances(truth_xy[f], found.xy[f, hyp], sigma=0.1)
        frames.append(FrameMatches(list(range(truth_xy.shape[1])), [found.track[f, h] for h in hyp], distances))
    return tracking_scores(frames)


def test_identical_animals_keep_their_identities_through_crossings() -> None:
    scene = make_social_scene(SCENE)
    assert len(scene.encounters()) >= 20
    xy, score, instance_score, _ = _detections(scene, np.random.default_rng(0))
    table = trajectories.instances_table(
        np.arange(len(xy)), np.arange(len(xy)) / 30, np.concatenate([xy, score[..., None]], -1),
        [f"k{j}" for j in range(xy.shape[2])], instance_score,
    )  # fmt: skip
    tracked = Instances.from_table(track_video(table, TrackerConfig(n_animals=3)))
    assert tracked.xy.shape[1] == 3 and set(tracked.track[tracked.present]) == {"track_0", "track_1", "track_2"}
    visible = np.where(scene.visible[..., None], scene.keypoints, np.nan)
    scores = _scores(visible, tracked)
    assert scores.switches == 0 and scores.mota > 0.95  # the detector missed 3% of the animals
    # Every frame where two animals' bodies overlap (mid-bodies within 0.4 body lengths) is flagged.
    close = scene.encounters(distance=0.4 * 57 * SCENE.body_scale)
    assert len(close) >= 15
    for frame, _, _ in close:
        assert tracked.swap_risk[frame].any(), frame


def test_never_more_tracks_than_animals() -> None:
    rng = np.random.default_rng(1)
    n_frames = 50
    xy = np.full((n_frames, 4, 2, 2), np.nan)
    xy[:, :2] = np.array([[[10.0, 10.0], [20.0, 10.0]], [[100.0, 100.0], [110.0, 100.0]]])  # two animals, still
    xy[:, 2] = rng.uniform(0, 200, (n_frames, 2, 2))  # spurious, weaker detections
    score = np.where(np.isfinite(xy[..., 0]), 0.9, np.nan)
    instance_score = np.array([0.9, 0.8, 0.5, np.nan])[None].repeat(n_frames, 0)
    tracked = track_poses(xy, score, instance_score, TrackerConfig(n_animals=2))
    assert tracked.n_tracks == 2
    assert (tracked.track_of[:, 2] == -1).all() and (tracked.track_of[:, :2] >= 0).all()
    assert len(set(tracked.track_of[:, 0])) == 1 and len(set(tracked.track_of[:, 1])) == 1


def test_a_known_count_keeps_identities_over_a_gap_and_a_maximum_ends_them() -> None:
    xy = np.full((40, 1, 2, 2), np.nan)
    xy[:10, 0] = [[10.0, 10.0], [20.0, 10.0]]
    xy[30:, 0] = [[150.0, 150.0], [160.0, 150.0]]  # back after 20 frames, far away
    score = np.where(np.isfinite(xy[..., 0]), 0.9, np.nan)
    instance_score = np.where(np.isfinite(xy[..., 0, 0]), 0.9, np.nan)
    known = track_poses(xy, score, instance_score, TrackerConfig(n_animals=1))
    assert known.n_tracks == 1 and known.swap_risk[30, 0]  # forced back onto the one track: flagged
    maximum = track_poses(xy, score, instance_score, TrackerConfig(n_animals=1, count="maximum", max_gap=10))
    assert maximum.n_tracks == 2 and maximum.track_of[30, 0] == 1


def test_bad_settings_name_the_key() -> None:
    with pytest.raises(InputError, match=r"tracking\.speed"):
        TrackerConfig.from_dict({"n_animals": 2, "speed": 3}, "config.yaml")
    with pytest.raises(InputError, match="n_animals must be an integer >= 1"):
        TrackerConfig.from_dict({"n_animals": 0}, "config.yaml")


def test_rows_keep_their_scores_and_tracks_in_the_table() -> None:
    xy = np.array([[[[1.0, 2.0]], [[50.0, 50.0]]], [[[51.0, 50.0]], [[2.0, 2.0]]]])  # (F=2, N=2, K=1, 2)
    peaks = np.concatenate([xy, np.array([[[[0.7]], [[0.6]]], [[[0.5]], [[0.4]]]])], -1)
    table = trajectories.instances_table(
        np.arange(2), np.arange(2) / 10.0, peaks, ["nose"], np.array([[0.9, 0.8], [0.7, 0.6]])
    )
    out = track_video(table, TrackerConfig(n_animals=2))
    assert out.schema.equals(trajectories.MULTI_ANIMAL_SCHEMA)
    rows = out.to_pandas()
    assert len(rows) == 4 and rows.frame.tolist() == [0, 0, 1, 1]
    second = rows[rows.frame == 1].set_index("track")
    assert second.loc["track_0", "x"] == 2.0 and second.loc["track_0", "score"] == pytest.approx(0.4)
    assert second.loc["track_1", "x"] == 51.0 and second.loc["track_1", "instance_score"] == pytest.approx(0.7)


def test_sleap_mot_two_mice_fewer_switches_than_the_trackers_that_ship_with_it() -> None:
    if not MOT.exists():
        pytest.skip(f"{MOT} is absent")
    truth = read_slp_instances(MOT / "proofread.slp", n_frames=97)
    given = read_slp_instances(MOT / "sleap_tracked.slp", n_frames=97)

    def scores(found: Instances):
        frames = []
        for f in range(97):
            gt, hyp = np.flatnonzero(truth.present[f]), np.flatnonzero(found.present[f])
            distances = pose_distances(truth.xy[f, gt], found.xy[f, hyp])
            frames.append(FrameMatches(list(truth.track[f, gt]), list(found.track[f, hyp]), distances))
        return tracking_scores(frames)

    untracked = Instances(given.frames, given.frames / 47.0, given.xy, given.score, given.instance_score,
                          np.full(given.track.shape, "", object), given.swap_risk, given.keypoint_names)  # fmt: skip
    ours = scores(Instances.from_table(track_video(untracked.to_table(), TrackerConfig(n_animals=2))))
    theirs = scores(given)
    assert theirs.switches == 20  # the published SLEAP tracking, as it ships
    assert ours.switches < theirs.switches and ours.idf1 > theirs.idf1 and ours.mota >= theirs.mota


def test_track_events_mark_births_losses_and_returns() -> None:
    from posecore.multi.tracking import track_events

    xy = np.full((10, 2, 1, 2), np.nan)
    xy[0:4, 0] = 1.0
    xy[6:10, 0] = 1.0  # track_0 lost after frame 3, found at frame 6
    xy[2:5, 1] = 5.0  # track_1 from frame 2 to 4
    found = Instances(np.arange(10) + 100, np.zeros(10), xy, np.ones((10, 2, 1)), np.ones((10, 2)),
                      np.where(np.isfinite(xy[..., 0, 0]), np.array(["track_0", "track_1"], object), ""),
                      np.zeros((10, 2), bool), ("nose",))  # fmt: skip
    events = track_events(found)
    assert events.values.tolist() == [
        [100, "track_0", "born", 0], [102, "track_1", "born", 0], [103, "track_0", "lost", 2],
        [104, "track_1", "ended", 0], [106, "track_0", "found", 2], [109, "track_0", "ended", 0],
    ]  # fmt: skip
