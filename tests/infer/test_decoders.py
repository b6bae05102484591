import itertools
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from posecore.infer.decoders import BUFFERS_PER_DECODER, Frames, ShardEnd, ShardSource, decode_shards
from posecore.infer.plan import Shard
from posecore.io.video import VideoError, probe

from .conftest import dot_frames, ffmpeg_frames


def sources(path, length, video=None, info=None):
    """The video cut into shards of `length` frames."""
    info = info or probe(path)
    bounds = [*range(0, info.n_frames, length), info.n_frames]
    return [
        ShardSource(Shard(video or path.stem, i, a, b), path, info)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def collect(events):
    """Frames by (video, shard index) in the order they came, the ends, and the buffers seen."""
    got, ends, buffers = {}, [], set()
    for event in events:
        if isinstance(event, Frames):
            key = (event.source.shard.video, event.source.shard.index)
            got.setdefault(key, []).append((event.indices.copy(), event.times.copy(), event.images.copy()))
            buffers.add(event.images.__array_interface__["data"][0])
            event.release()
        else:
            ends.append(event)
    return got, ends, buffers


def test_every_frame_once_as_ffmpeg_decodes_it_in_order_within_each_shard(video, other_video):
    srcs = sources(video, 6) + sources(other_video, 5)
    got, ends, buffers = collect(decode_shards(srcs, batch_size=4, decoders=3))
    assert sorted(e.source.shard for e in ends) == sorted(s.shard for s in srcs)
    assert all(e.error is None for e in ends)
    for path in (video, other_video):
        expected = ffmpeg_frames(path)
        info = probe(path)
        parts = [got[(path.stem, i)] for i in range(len([s for s in srcs if s.shard.video == path.stem]))]
        indices = np.concatenate([i for part in parts for i, _, _ in part])
        assert indices.tolist() == list(range(info.n_frames))
        assert np.array_equal(np.concatenate([t for part in parts for _, t, _ in part]), indices / info.fps)
        assert np.array_equal(np.concatenate([im for part in parts for _, _, im in part]), expected)
    # Decoders reuse their buffers: a batch's memory is one of at most decoders x buffers.
    assert len(buffers) <= 3 * BUFFERS_PER_DECODER


def test_a_shard_end_comes_after_its_last_batch(video):
    seen = []
    for event in decode_shards(sources(video, 5), batch_size=2, decoders=2):
        seen.append((type(event).__name__, event.source.shard.index))
        if isinstance(event, Frames):
            event.release()
    for index in {i for _, i in seen}:
        kinds = [k for k, i in seen if i == index]
        assert kinds[-1] == "ShardEnd" and kinds.count("ShardEnd") == 1


def test_a_corrupt_video_fails_its_own_shards_and_the_others_finish(video, other_video, tmp_path):
    broken = tmp_path / "broken.mp4"
    data = other_video.read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])  # truncated: decoding stops early
    info = probe(other_video)  # the probe of the whole file: frames are missing at the end
    bad = sources(broken, 100, "broken", info)
    got, ends, _ = collect(decode_shards([*bad, *sources(video, 10)], batch_size=4, decoders=2))
    errors = {e.source.shard.video: e.error for e in ends if e.error is not None}
    assert set(errors) == {"broken"} and isinstance(errors["broken"], VideoError)
    assert "broken.mp4" in str(errors["broken"])
    frames = np.concatenate([i for key, parts in got.items() if key[0] == "dot" for i, _, _ in parts])
    assert sorted(frames.tolist()) == list(range(probe(video).n_frames))


def ffmpeg_processes():
    listing = subprocess.run(["ps", "-eo", "ppid,comm"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if line.split()[-1] == "ffmpeg"]


def test_stopping_early_stops_every_decoder_and_its_ffmpeg(video):
    before = len(ffmpeg_processes())
    events = decode_shards(sources(video, 3), batch_size=1, decoders=3)
    first = next(events)
    assert isinstance(first, Frames)  # the consumer holds one batch and stops
    events.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        [t for t in threading.enumerate() if t.name == "posecore-decoder"] or len(ffmpeg_processes()) > before
    ):
        time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name == "posecore-decoder"]
    assert len(ffmpeg_processes()) <= before


def test_bad_settings():
    with pytest.raises(ValueError, match="at least 1"):
        list(decode_shards([], batch_size=0, decoders=1))
    assert list(decode_shards([], batch_size=1, decoders=2)) == []
    assert ShardEnd  # the type a consumer matches on


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, encode_h264):
    # Long enough (3.7 MB of RGB) that ffmpeg is still decoding after a first batch: the pipe
    # holds 1 MB.
    return encode_h264(dot_frames(400), tmp_path_factory.mktemp("long") / "long.mp4", fps=30, gop=50)


def decode_killing_ffmpeg_once(video):
    """Decode the video in one shard, killing its ffmpeg after the first batch: (frames, ends)."""
    killed, got, ends = [], [], []
    for event in decode_shards(sources(video, 400), batch_size=2, decoders=1):
        if isinstance(event, Frames):
            got.append((event.indices.copy(), event.images.copy()))
            event.release()
            if not killed:
                pgrep = ["pgrep", "-P", str(os.getpid()), "ffmpeg"]
                children = subprocess.run(pgrep, capture_output=True, text=True).stdout.split()
                for pid in children:
                    os.kill(int(pid), signal.SIGKILL)
                killed.extend(children)
        else:
            ends.append(event)
    assert killed, "an ffmpeg was running and was killed"
    return got, ends


def test_a_decoder_process_that_dies_is_replaced_and_no_frame_is_missing_or_shifted(long_video, caplog):
    video = long_video
    got, ends = decode_killing_ffmpeg_once(video)
    assert [e.error for e in ends] == [None]
    assert np.concatenate([i for i, _ in got]).tolist() == list(range(400))
    assert np.array_equal(np.concatenate([im for _, im in got]), ffmpeg_frames(video))
    assert "ffmpeg was killed by signal 9; a new ffmpeg decodes from frame" in caplog.text  # logged


def test_a_decoder_killed_too_often_fails_its_shard_saying_so(long_video, monkeypatch):
    monkeypatch.setattr("posecore.io.video._DECODER_RETRIES", 0)
    _, (end,) = decode_killing_ffmpeg_once(long_video)
    assert isinstance(end.error, VideoError)
    assert "long.mp4 (frame" in str(end.error) and "ffmpeg was killed by signal 9 (1 times)" in str(end.error)
