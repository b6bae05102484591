import pytest

from posecore.errors import InputError
from posecore.infer.plan import PlannedShard, Shard, jobs_of, plan_jobs, plan_shards, read_plan, write_plan
from posecore.io.video import VideoInfo


def info(n_frames, width=640, height=480, keyframes=(0,)):
    return VideoInfo("v.mp4", n_frames, 30.0, width, height, "h264", "yuv420p", n_frames / 30, False, keyframes, None)


@pytest.mark.parametrize(("n_frames", "per_shard"), [(10, 3), (9, 3), (1, 5), (2330, 1000), (7, 7), (7, 100)])
def test_shards_cover_every_frame_once_in_order(n_frames, per_shard):
    shards = plan_shards("v", info(n_frames), per_shard)
    assert [f for s in shards for f in range(s.start, s.stop)] == list(range(n_frames))
    assert [s.index for s in shards] == list(range(len(shards)))
    assert all(s.video == "v" for s in shards)


def test_shard_length_is_work_in_640x480_frames():
    # A 320x240 frame is a quarter of the work of a 640x480 one: 4 times the frames per shard.
    assert [s.n_frames for s in plan_shards("v", info(1000, 320, 240), 100)] == [400, 400, 200]
    # 1280x960: 4 times the work, 25 frames a shard.
    assert [s.n_frames for s in plan_shards("v", info(60, 1280, 960), 100)] == [25, 25, 10]


def test_boundaries_move_to_a_keyframe_within_half_a_shard():
    keyframes = (0, 12, 24, 36, 48, 60, 72, 84, 96)
    shards = plan_shards("v", info(100, keyframes=keyframes), 10)
    # Nominal boundaries 10, 22 -> 24, 34 -> 36, ...: each moves to the first keyframe in [b, b + 5).
    assert [s.start for s in shards] == [0, 12, 24, 36, 48, 60, 72, 84, 96]
    # No keyframe near: the nominal boundary stays.
    assert [s.start for s in plan_shards("v", info(30, keyframes=(0,)), 10)] == [0, 10, 20]


def test_a_range_of_frames():
    shards = plan_shards("v", info(100), 30, start=10, stop=75)
    assert [(s.start, s.stop) for s in shards] == [(10, 40), (40, 70), (70, 75)]
    with pytest.raises(ValueError, match=r"frames \[10, 101\)"):
        plan_shards("v", info(100), 30, start=10, stop=101)
    with pytest.raises(ValueError, match="frames_per_shard"):
        plan_shards("v", info(100), 0)


def test_jobs_take_shards_in_sheet_order_until_full():
    videos = [("a", info(25)), ("b", info(10)), ("c", info(40, 320, 240))]
    plan = plan_jobs(videos, frames_per_shard=10, frames_per_job=20)
    # a: 10 + 10 (job 0 is full), 5 -> job 1; b: 10 -> job 1 (15); c: 40 frames of a quarter of
    # the work each, one shard of 10 -> job 1, which was not full yet.
    assert [(p.job, p.shard.video, p.shard.start, p.shard.stop) for p in plan] == [
        (0, "a", 0, 10),
        (0, "a", 10, 20),
        (1, "a", 20, 25),
        (1, "b", 0, 10),
        (1, "c", 0, 40),
    ]
    assert list(jobs_of(plan)) == [0, 1]


def test_appending_a_video_changes_only_the_last_job():
    videos = [(name, info(30)) for name in "abcde"]
    before = plan_jobs(videos, 10, 40)
    after = plan_jobs([*videos, ("f", info(30))], 10, 40)
    last = max(p.job for p in before)
    assert [p for p in after if p.job < last] == [p for p in before if p.job < last]
    assert plan_jobs(videos, 10, 40) == before  # the same videos, the same plan


def test_plan_round_trip_and_bad_files(tmp_path):
    plan = [PlannedShard(0, Shard("a:b", 0, 0, 10)), PlannedShard(1, Shard("c", 3, 30, 41))]
    write_plan(plan, tmp_path / "plan.tsv")
    assert read_plan(tmp_path / "plan.tsv") == plan
    (tmp_path / "bad.tsv").write_text("video\tstart\n")
    with pytest.raises(InputError, match=r"bad\.tsv.*columns job, video, shard, start, stop"):
        read_plan(tmp_path / "bad.tsv")
    (tmp_path / "bad2.tsv").write_text("job\tvideo\tshard\tstart\tstop\nx\ta\t0\t0\t1\n")
    with pytest.raises(InputError, match=r"bad2\.tsv: not an inference plan"):
        read_plan(tmp_path / "bad2.tsv")
