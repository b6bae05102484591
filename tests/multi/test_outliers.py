import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from posecore.io import trajectories
from posecore.multi.outliers import find_multi_outliers
from posecore.outliers import OutlierConfig, Poses, extract_outliers, find_outliers
from posecore.synth.animal import KEYPOINTS
from posecore.synth.social import SocialConfig
from posecore.synth.social_archive import SocialArchiveConfig, make_social_archive, scene_of

CONFIG = SocialArchiveConfig(
    scene=SocialConfig(n_animals=2, n_frames=96, n_encounters=4, width=192, height=192, body_scale=0.9, seed=2),
    n_labeled_per_video=0,
)


def _tracked(swap_frames=(30, 70), low=(50, 1, 2)) -> pa.Table:
    scene = scene_of(CONFIG, 0)
    keypoints = scene.keypoints  # (T, A, K, 2)
    score = np.full(keypoints.shape[:3], 0.9)
    score[low] = 0.05  # animal 1's keypoint 2 unsure in frame 50
    risk = np.zeros(keypoints.shape[:2], bool)
    risk[list(swap_frames)] = True
    peaks = np.concatenate([keypoints, score[..., None]], axis=-1)
    tracks = np.array(["track_0", "track_1"], object)
    frames = np.arange(len(keypoints))
    return trajectories.instances_table(frames, frames / 30, peaks, KEYPOINTS, np.full(risk.shape, 0.9), tracks, risk)


def test_swap_risk_frames_come_first_then_unsure_animals() -> None:
    found = trajectories.Instances.from_table(_tracked())
    config = OutlierConfig(min_score=0.5, jump_px=1000.0)
    flagged = find_multi_outliers(found, lambda *animal: find_outliers(Poses(*animal), config))
    assert flagged["frame"].tolist()[:3] == [30, 70, 50]
    assert flagged["reason"].tolist()[:3] == ["swap_risk", "swap_risk", "low_score"]
    assert flagged["severity"].iloc[0] == 1.0 and flagged["severity"].iloc[2] == pytest.approx(0.5 * (1 - 0.05 / 0.5))
    assert flagged["worst_keypoint"].iloc[2] == "track_1:right_ear"
    assert flagged["n_swap_risk"].iloc[0] == 2 and flagged["n_animals"].iloc[0] == 2


def test_the_refine_folder_is_a_multi_animal_deeplabcut_project(tmp_path_factory) -> None:
    archive = make_social_archive(tmp_path_factory.mktemp("social") / "a", CONFIG)
    out = tmp_path_factory.mktemp("refine") / "social-000"
    picks = extract_outliers(
        _tracked().to_pandas(), archive.videos[0], out, OutlierConfig(n_frames=3, min_gap=5, jump_px=1000.0)
    )
    assert picks["frame"].tolist() == [30, 70, 50]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["multianimalproject"] is True and config["individuals"] == ["track_0", "track_1"]
    assert config["multianimalbodyparts"][0] == "snout"
    labels = pd.read_hdf(out / "labeled-data" / "social-000" / "machinelabels-iter0.h5")
    assert labels.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    scene = scene_of(CONFIG, 0)
    snout = labels.loc[:, (slice(None), "track_1", "snout", ["x", "y"])].to_numpy()  # rows in frame order
    np.testing.assert_allclose(snout, scene.keypoints[[30, 50, 70], 1, 0], rtol=1e-5)
    assert np.isnan(labels.loc[:, (slice(None), "track_1", "right_ear", "x")].to_numpy()[1])  # frame 50, score 0.05
