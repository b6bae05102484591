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


def test_a_job_closes_once_its_work_reaches_frames_per_job_counted_in_640x480_frames():
    # 640x480 shards of 10 frames, jobs of 21: 10 + 10 = 20 < 21, so the third shard still joins job 0.
    plan = plan_jobs([("a", info(60))], frames_per_shard=10, frames_per_job=21)
    assert [p.job for p in plan] == [0, 0, 0, 1, 1, 1]
    # A 320x240 shard of 40 frames is worth 10: two of them (20) leave job 0 open for a third.
    plan = plan_jobs([("q", info(80, 320, 240)), ("a", info(30))], frames_per_shard=10, frames_per_job=21)
    assert [(p.job, p.shard.video) for p in plan] == [(0, "q"), (0, "q"), (0, "a"), (1, "a"), (1, "a")]
    with pytest.raises(ValueError, match="frames_per_job must be at least 1, got 0"):
        plan_jobs([("a", info(60))], 10, 0)
    assert jobs_of(plan) == {0: [p.shard for p in plan[:3]], 1: [p.shard for p in plan[3:]]}


def test_a_keyframe_is_taken_from_the_nominal_boundary_up_to_but_not_at_half_a_shard():
    # Shards of 10: from nominal boundary 10, a keyframe at 10 itself is taken (not a later one),
    # one at 15 (half a shard on) is not.
    assert [s.start for s in plan_shards("v", info(30, keyframes=(0, 10, 12)), 10)] == [0, 10, 20]
    assert [s.start for s in plan_shards("v", info(30, keyframes=(0, 15)), 10)] == [0, 10, 20]
    assert [s.start for s in plan_shards("v", info(30, keyframes=(0, 14)), 10)] == [0, 14, 24]
    assert [s.start for s in plan_shards("v", info(40, keyframes=(0, 17)), 10)] == [0, 10, 20, 30]


def test_an_empty_range_has_no_shard_and_a_huge_frame_is_one_frame_a_shard():
    assert plan_shards("v", info(100), 30, start=40, stop=40) == []
    # 1280x960 is worth 4 frames of 640x480: shards of 1 reference frame still hold one frame.
    assert [s.n_frames for s in plan_shards("v", info(3, 1280, 960), 1)] == [1, 1, 1]


def test_the_plan_is_plain_tsv_and_an_empty_file_names_itself(tmp_path):
    write_plan([PlannedShard(0, Shard("a", 0, 0, 10)), PlannedShard(1, Shard("a", 1, 10, 12))], tmp_path / "p.tsv")
    assert (tmp_path / "p.tsv").read_bytes() == b"job\tvideo\tshard\tstart\tstop\n0\ta\t0\t0\t10\n1\ta\t1\t10\t12\n"
    (tmp_path / "empty.tsv").write_text("")
    header = "an inference plan has columns job, video, shard, start, stop; found"
    with pytest.raises(InputError, match=rf"empty\.tsv: {header} $"):
        read_plan(tmp_path / "empty.tsv")
    (tmp_path / "other.tsv").write_text("video\tstart\n")
    with pytest.raises(InputError, match=r"found video, start$"):
        read_plan(tmp_path / "other.tsv")
