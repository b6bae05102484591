import pandas as pd
import pytest

from posecore.errors import InputError
from posecore.infer.archive import (
    aggregate_video,
    parse_shards,
    plan_archive,
    read_record,
    run_planned_job,
    write_record,
)
from posecore.infer.plan import Shard, read_plan
from posecore.infer.shards import ShardResult
from posecore.io.video import VideoError, VideoInfo, probe_to_json

from .conftest import KEYPOINTS


@pytest.fixture
def probes(tmp_path, video, other_video):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    paths = {}
    for name, path in (("dot", video), ("broken", broken), ("other", other_video)):
        paths[name] = tmp_path / "videos" / f"{name}.json"
        probe_to_json(path, paths[name])
    return paths


def test_a_video_that_cannot_be_probed_records_its_error_and_gets_no_shard(probes, tmp_path):
    with pytest.raises(VideoError, match=r"broken\.mp4: not a readable video"):
        VideoInfo.read_json(probes["broken"])
    plan_archive(probes, frames_per_shard=1, frames_per_job=1, out=tmp_path / "plan.tsv")
    plan = read_plan(tmp_path / "plan.tsv")
    assert [p.shard.video for p in plan] == ["dot", "other"]  # 64x48: one shard each, in sheet order


def test_planned_job_then_aggregation_give_each_videos_trajectories(
    probes, video, other_video, model_path, tmp_path, one_torch_thread
):
    specs = ["dot:0:0:10", "dot:1:10:21", "other:0:0:13"]
    assert parse_shards(["a:b:2:3:7"]) == [Shard("a:b", 2, 3, 7)]  # a name may hold colons
    paths = {"dot": video, "other": other_video}
    record = tmp_path / "jobs" / "00000.tsv"
    run_planned_job(
        specs, paths, [probes["dot"], probes["other"]], model_path, tmp_path / "p", record, threads=1, progress=False
    )
    assert [(r.shard.video, r.status) for r in read_record(record)] == [("dot", "done")] * 2 + [("other", "done")]
    out = tmp_path / "trajectories" / "video=dot" / "part-0.parquet"
    aggregate_video("dot", [record], probes["dot"], tmp_path / "p", out)
    table = pd.read_parquet(out)
    assert table.frame.tolist() == [f for f in range(21) for _ in KEYPOINTS]
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        aggregate_video("broken", [], probes["broken"], tmp_path / "p", tmp_path / "x.parquet")


def test_a_failed_shard_fails_its_videos_aggregation_with_the_recorded_error(probes, tmp_path):
    record = tmp_path / "00003.tsv"
    results = [
        ShardResult(Shard("dot", 0, 0, 10), "done", 1.5),
        ShardResult(Shard("dot", 1, 10, 21), "failed", error="VideoError: dot.mp4 (frame 12): decode errors\nmore"),
    ]
    write_record(results, record)
    assert [(r.status, r.error) for r in read_record(record)][1] == (
        "failed",
        "VideoError: dot.mp4 (frame 12): decode errors more",
    )
    with pytest.raises(InputError, match=r"dot\.mp4: shard 1 failed, as .*00003\.tsv records: VideoError: .*frame 12"):
        aggregate_video("dot", [record], probes["dot"], tmp_path, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    (tmp_path / "bad.tsv").write_text("video\tshard\n")
    with pytest.raises(InputError, match=r"bad\.tsv: a job record has columns"):
        read_record(tmp_path / "bad.tsv")
