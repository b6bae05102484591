"""The multi-animal path a video takes through the workflow, with the functions called directly.

Shards of untracked detections (what `infer_shard` would write with a top-down model), joined
by `aggregate_shards`, tracked once per video (where `aggregate` would call `track_video`),
written as the video's trajectories, then read by the QC report, the outlier picker and the
exports.
"""

import numpy as np
import pandas as pd
import pytest

from posecore.infer.plan import plan_shards
from posecore.io import trajectories
from posecore.io.exports import write_dlc_h5
from posecore.io.sleap_tracks import read_slp_instances, write_slp
from posecore.io.video import probe
from posecore.multi.predict import TopDownModel, TopDownPredictor, detect_video
from posecore.multi.topdown import TopDownConfig
from posecore.multi.tracking import TrackerConfig, track_video
from posecore.outliers import OutlierConfig, extract_outliers
from posecore.qc.animals import animals_qc
from posecore.synth.animal import KEYPOINTS
from posecore.synth.social import SocialConfig
from posecore.synth.social_archive import SocialArchiveConfig, make_social_archive

from .conftest import channel_model

NAMES = KEYPOINTS[:3]  # the stand-in has a map per colour channel


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    config = SocialArchiveConfig(
        scene=SocialConfig(n_animals=2, n_frames=40, n_encounters=2, width=128, height=128, body_scale=0.6, seed=1),
        n_labeled_per_video=0,
    )
    return make_social_archive(tmp_path_factory.mktemp("social") / "a", config).videos[0]


def test_shards_join_track_and_feed_qc_outliers_and_exports(video, tmp_path) -> None:
    # Stand-in models whose maps are the frame's colours find arbitrary "animals": the plumbing is the test.
    model = TopDownModel(channel_model(("centroid",)), channel_model(NAMES), TopDownConfig(max_animals=2), 32)
    predictor = TopDownPredictor(model, batch_size=8)
    info = probe(video)
    shards = []
    for shard in plan_shards("social-000", info, 1):  # about 19 frames a shard
        path = tmp_path / "predictions" / f"shard-{shard.index:05d}.parquet"
        trajectories.write_atomic(detect_video(predictor, video, shard.start, shard.stop), path)
        shards.append(path)
    joined = trajectories.aggregate_shards(shards, info.n_frames, tmp_path / "joined.parquet")
    assert len(joined) == info.n_frames * 2 * len(NAMES)  # every frame: 2 detection slots, empty ones NaN
    tracked = track_video(joined, TrackerConfig(n_animals=2))
    out = tmp_path / "trajectories" / "video=social-000" / "part-0.parquet"
    out.parent.mkdir(parents=True)
    trajectories.write_atomic(tracked, out)
    rows = pd.read_parquet(tmp_path / "trajectories")  # the folder reads as one table
    assert set(rows["track"].astype(str)) <= {"", "track_0", "track_1"} and rows["instance"].max() <= 1
    (qc,) = animals_qc({"social-000": [out]}, NAMES)
    assert len(qc.frames) == info.n_frames and qc.counts.max() <= 2
    picks = extract_outliers(out, video, tmp_path / "refine", OutlierConfig(n_frames=3, min_gap=2), info=info)
    assert len(picks) <= 3
    write_slp(tracked, tmp_path / "tracks.slp", video=video)
    back = read_slp_instances(tmp_path / "tracks.slp", n_frames=info.n_frames)
    found = trajectories.Instances.from_table(tracked)
    np.testing.assert_allclose(back.xy[back.present], found.xy[found.present], rtol=1e-5)
    write_dlc_h5(tracked.to_pandas(), tmp_path / "social-000_el.h5", scorer="posecore")
    assert pd.read_hdf(tmp_path / "social-000_el.h5").shape[0] == info.n_frames
