import numpy as np
import pytest

from posecore.multi.mot import FrameMatches, pose_distances, tracking_scores

mm = pytest.importorskip("motmetrics")


def _frames(rng: np.random.Generator, n_frames: int) -> list[FrameMatches]:
    """Three animals moving about, a tracker that sometimes swaps, loses or invents identities."""
    positions = rng.uniform(0, 100, (3, 2))
    frames = []
    names = [10, 11, 12, 13, 14]  # track ids (motmetrics takes numbers)
    labels = {0: 10, 1: 11, 2: 12}
    for _ in range(n_frames):
        positions += rng.normal(0, 3, positions.shape)
        present = np.flatnonzero(rng.random(3) < 0.9)
        if rng.random() < 0.08:  # the tracker swaps two identities, or gives one a new name
            x, y = rng.choice(3, 2, replace=False)
            labels[x], labels[y] = (
                (labels[y], labels[x]) if rng.random() < 0.5 else (names[int(rng.integers(5))], labels[y])
            )
        seen = [i for i in present if rng.random() < 0.92]
        guesses = positions[seen] + rng.normal(0, 2, (len(seen), 2))
        tracks = [labels[i] for i in seen]
        if rng.random() < 0.1:  # a spurious detection
            guesses = np.concatenate([guesses, rng.uniform(0, 100, (1, 2))])
            tracks.append(20 + int(rng.integers(3)))
        tracks_unique = list(dict.fromkeys(tracks))
        keep = [tracks.index(t) for t in tracks_unique]
        distance = np.linalg.norm(positions[present][:, None] - guesses[keep][None], axis=-1)
        frames.append(FrameMatches(list(present), tracks_unique, np.where(distance < 8, distance, np.nan)))
    return frames


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_scores_equal_motmetrics(seed: int) -> None:
    frames = _frames(np.random.default_rng(seed), 300)
    accumulator = mm.MOTAccumulator(auto_id=True)
    for frame in frames:
        accumulator.update(list(frame.truth), list(frame.tracks), frame.distances)
    names = ["mota", "idf1", "num_switches", "num_misses", "num_false_positives", "idtp", "idfp", "idfn", "num_objects"]
    summary = mm.metrics.create().compute(accumulator, metrics=names)
    ours = tracking_scores(frames)
    assert ours.switches > 0 and ours.misses > 0 and ours.false_positives > 0  # every kind of error happens
    assert ours.mota == pytest.approx(float(summary["mota"].iloc[0]), abs=1e-12)
    assert ours.idf1 == pytest.approx(float(summary["idf1"].iloc[0]), abs=1e-12)
    assert ours.switches == int(summary["num_switches"].iloc[0])
    assert ours.misses == int(summary["num_misses"].iloc[0])
    assert ours.false_positives == int(summary["num_false_positives"].iloc[0])
    assert (ours.idtp, ours.idfp, ours.idfn) == tuple(int(summary[k].iloc[0]) for k in ("idtp", "idfp", "idfn"))
    assert ours.n_truth == int(summary["num_objects"].iloc[0])


def test_a_perfect_tracker_scores_one() -> None:
    frames = [FrameMatches(["a", "b"], [7, 8], np.array([[0.0, np.nan], [np.nan, 0.1]])) for _ in range(5)]
    scores = tracking_scores(frames)
    assert (scores.mota, scores.idf1, scores.switches) == (1.0, 1.0, 0)


def test_pose_distances_are_one_minus_oks_within_reach() -> None:
    truth = np.array([[[0.0, 0.0], [20.0, 10.0]], [[100.0, 100.0], [120.0, 110.0]]])
    tracked = truth[::-1] + 0.5
    distances = pose_distances(truth, tracked, sigma=0.1)
    assert np.isnan(distances[0, 0]) and np.isnan(distances[1, 1])
    assert 0 < distances[0, 1] < 0.1 and distances[0, 1] == pytest.approx(distances[1, 0])
