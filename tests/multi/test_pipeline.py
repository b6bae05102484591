"""A top-down model's path through the archive's inference: jobs of shards, aggregation with tracking, exports.

The model file holds read-out models (tests/conftest.py, `two_blobs_video`) that find each white blob of a
frame as an animal; the video has two blobs passing each other, so the tracks must each follow
one blob from the first frame to the last.
"""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from posecore.errors import InputError
from posecore.infer.archive import aggregate_video, write_record
from posecore.infer.job import Video, run_job
from posecore.infer.plan import Shard
from posecore.infer.shards import shard_path
from posecore.io import trajectories
from posecore.io.exports import export_trajectories
from posecore.io.sleap_tracks import read_slp_instances
from posecore.io.video import probe
from posecore.outliers import OutlierConfig, extract_outliers
from posecore.qc.animals import animals_qc

NAMES = ("nose", "tail")
CONFIG = {"animals": {"max_animals": 2, "count": "known"}, "tracking": {}}  # as the workflow records it


def _run_and_aggregate(two_blobs_video, tmp_path, config):
    video, _, model = two_blobs_video
    info = probe(video)
    shards = [Shard("blobs", 0, 0, 16), Shard("blobs", 1, 16, 30), Shard("blobs", 2, 30, info.n_frames)]
    results = run_job(shards, {"blobs": Video(video, info)}, model, tmp_path / "predictions", config=config,
                      progress=False)  # fmt: skip
    write_record(results, tmp_path / "job.tsv")
    probe_json = tmp_path / "blobs.json"
    info.write_json(probe_json)
    out = tmp_path / "trajectories" / "video=blobs" / "part-0.parquet"
    aggregate_video("blobs", [tmp_path / "job.tsv"], probe_json, tmp_path / "predictions", out)
    return shards, out


def test_shards_hold_detections_and_each_track_follows_one_animal(two_blobs_video, tmp_path, one_torch_thread):
    _, centres, _ = two_blobs_video
    shards, out = _run_and_aggregate(two_blobs_video, tmp_path, CONFIG)
    detections = pq.read_table(shard_path(tmp_path / "predictions", shards[0]))
    assert trajectories.is_multi_animal(detections.schema)
    assert len(detections) == shards[0].n_frames * 2 * len(NAMES), "max_animals slots of K rows every frame"
    assert set(detections.column("track").to_pylist()) == {""}, "shards are untracked"
    tracked = pd.read_parquet(tmp_path / "trajectories")
    assert set(tracked["track"].astype(str)) == {"track_0", "track_1"}
    assert len(tracked) == len(centres) * 2 * len(NAMES) and tracked["swap_risk"].dtype == bool
    assert trajectories.read_tracks(out) == ["track_0", "track_1"]
    assert trajectories.read_provenance(out)["config"] == CONFIG
    found = trajectories.Instances.from_table(pq.read_table(out))
    # Each track stays on one blob all video long: the blob nearest it in the first frame.
    nose = found.xy[:, :, 0]  # (F, 2, 2)
    first = [int(np.argmin(np.linalg.norm(centres[0] - nose[0, t], axis=-1))) for t in range(2)]
    assert sorted(first) == [0, 1]
    error = np.linalg.norm(nose - centres[:, first], axis=-1)  # (F, 2)
    assert np.nanmax(error) < 6.0, f"a track left its blob: {np.nanmax(error):.1f} px"
    (qc,) = animals_qc({"blobs": [out]}, list(NAMES))
    assert qc.counts.tolist() == [2] * len(centres)


def test_the_tracks_export_to_sleap_and_multi_animal_deeplabcut(two_blobs_video, tmp_path, one_torch_thread):
    video, centres, _ = two_blobs_video
    _, out = _run_and_aggregate(two_blobs_video, tmp_path, CONFIG)
    info = probe(video)
    shape = (info.n_frames, info.height, info.width, 3)
    export_trajectories(out, "slp", tmp_path / "blobs.slp", video_path=video, keypoint_names=NAMES,
                        skeleton=[NAMES], video_shape=shape)  # fmt: skip
    export_trajectories(out, "dlc-h5", tmp_path / "blobs.h5", video_path=video, keypoint_names=NAMES)
    back = read_slp_instances(tmp_path / "blobs.slp", n_frames=info.n_frames)
    found = trajectories.Instances.from_table(pq.read_table(out))
    assert set(back.track.ravel()) == {"track_0", "track_1"}
    for name in ("track_0", "track_1"):  # every track's points, as SLEAP reads them back
        np.testing.assert_allclose(back.xy[back.track == name], found.xy[found.track == name], rtol=1e-5)
    dlc = pd.read_hdf(tmp_path / "blobs.h5")
    assert list(dlc.columns.get_level_values("individuals").unique()) == ["track_0", "track_1"]
    assert dlc.shape == (len(centres), 2 * len(NAMES) * 3)
    picks = extract_outliers(out, video, tmp_path / "refine", OutlierConfig(n_frames=3, min_gap=2), info=info)
    assert len(picks) <= 3


def test_detections_without_tracking_settings_are_refused_naming_the_shard(two_blobs_video, tmp_path, one_torch_thread):
    with pytest.raises(InputError, match=r"shard-00000\.parquet.*neither tracking settings given"):
        _run_and_aggregate(two_blobs_video, tmp_path, {"command": "predict"})
