import numpy as np
import pandas as pd
import pytest

from posecore.io.label_table import load_image
from posecore.io.labels import read_labels
from posecore.synth.animal import KEYPOINTS
from posecore.synth.media import decode_frames
from posecore.synth.social import SocialConfig
from posecore.synth.social_archive import SocialArchiveConfig, labeled_frames, make_social_archive, scene_of

CONFIG = SocialArchiveConfig(
    scene=SocialConfig(n_animals=2, n_frames=96, n_encounters=4, width=192, height=192, body_scale=0.9, seed=5),
    n_videos=1,
    n_labeled_per_video=10,
)


@pytest.fixture(scope="module")
def social(tmp_path_factory):
    return make_social_archive(tmp_path_factory.mktemp("social") / "out", CONFIG)


def test_labels_are_multi_animal_deeplabcut_with_the_ground_truth(social) -> None:
    scene = scene_of(CONFIG, 0)
    frames = np.array(social.labeled[0])
    table = read_labels(social.label_files[0])
    assert table.multi_animal and table.keypoint_names == KEYPOINTS and table.scorer == "synth"
    assert table.keypoints.shape == (10, 2, len(KEYPOINTS), 2)
    visible = scene.visible[frames]  # (N, A, K)
    np.testing.assert_allclose(table.keypoints[visible], scene.keypoints[frames][visible], atol=1e-4)
    assert np.isnan(table.keypoints[~visible]).all()  # hidden keypoints are left unlabeled
    assert (table.tracks == np.array(["animal0", "animal1"], dtype=object)).all()
    for row, path in enumerate(social.images[0]):
        decoded = decode_frames(social.videos[0], frames[[row]], 192, 192)[0]
        np.testing.assert_array_equal(load_image(path), decoded)


def test_half_the_labeled_frames_are_encounters() -> None:
    scene = scene_of(CONFIG, 0)
    frames = labeled_frames(scene, 10)
    met = {frame for frame, _, _ in scene.encounters()}
    assert len(frames) == 10 == len(set(frames.tolist()))
    assert len(met & set(frames.tolist())) >= min(5, len(met))


def test_ground_truth_has_every_animal_with_its_identity(social) -> None:
    truth = pd.read_parquet(social.ground_truth[0])
    assert list(truth.columns) == ["video", "frame", "time_s", "instance", "track", "keypoint", "x", "y", "visible"]
    assert len(truth) == 96 * 2 * len(KEYPOINTS)
    scene = scene_of(CONFIG, 0)
    one = truth[(truth.frame == 40) & (truth.track == "animal1")]
    np.testing.assert_allclose(one[["x", "y"]].to_numpy(), scene.keypoints[40, 1])
    assert (one.instance == 1).all() and one.visible.tolist() == scene.visible[40, 1].tolist()


def test_a_finished_archive_is_kept(social) -> None:
    before = social.manifest.stat().st_mtime_ns
    again = make_social_archive(social.root, CONFIG)
    assert again.manifest.stat().st_mtime_ns == before
