import threading
import time

import pytest

from posecore.errors import InputError
from posecore.infer import Shard, _prefetch, plan_shards, read_shard_plan, write_shard_plan


@pytest.mark.parametrize(("n_frames", "size"), [(10, 3), (9, 3), (1, 5), (2330, 1000), (7, 7)])
def test_shards_cover_every_frame_once(n_frames, size):
    shards = plan_shards(n_frames, size)
    frames = [f for s in shards for f in range(s.start, s.stop)]
    assert frames == list(range(n_frames))
    assert all(0 < s.stop - s.start <= size for s in shards)
    assert [s.index for s in shards] == list(range(len(shards)))


def test_shard_plan_round_trip(tmp_path):
    shards = plan_shards(25, 10)
    write_shard_plan(shards, tmp_path / "v.tsv")
    assert read_shard_plan(tmp_path / "v.tsv") == shards == [Shard(0, 0, 10), Shard(1, 10, 20), Shard(2, 20, 25)]


def test_bad_shard_plan_is_named(tmp_path):
    (tmp_path / "v.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match=r"v\.tsv"):
        read_shard_plan(tmp_path / "v.tsv")
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(10, 0)


def test_prefetch_keeps_order_and_reads_ahead():
    produced = []

    def source():
        for i in range(6):
            produced.append(i)
            yield i

    consumed = []
    for item in _prefetch(source(), depth=2):
        time.sleep(0.02)  # the model's turn: the reader has gone ahead meanwhile
        consumed.append((item, len(produced)))
    assert [item for item, _ in consumed] == list(range(6))
    assert consumed[0][1] >= 2, "the reader did not decode ahead of the consumer"


def test_prefetch_raises_the_readers_error_and_stops_the_thread():
    def source():
        yield 1
        raise InputError("v.mp4", "decode failed", where="frame 1")

    with pytest.raises(InputError, match="frame 1"):
        list(_prefetch(source()))
    assert not [t for t in threading.enumerate() if t.name == "posecore-decode"]


def test_prefetch_stops_when_the_consumer_stops_early():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    for item in _prefetch(endless()):
        if item == 3:
            break
    time.sleep(0.3)
    assert not [t for t in threading.enumerate() if t.name == "posecore-decode" and t.is_alive()]
