import dataclasses
import hashlib
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from posecore.io import video
from posecore.io.ffmpeg_tools import PacketTable
from posecore.io.video import VideoError, VideoInfo, probe, read_frame_array, read_frames


def sha1s(images):
    return [hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]


def read_sha1s(path, start, stop, info, batch_size=1):
    batches = read_frames(path, start, stop, info=info, batch_size=batch_size)
    return [h for batch in batches for h in sha1s(batch.images)]


def shards(start, sizes):
    """Consecutive [a, b) ranges of the given sizes from start."""
    out = []
    for size in sizes:
        out.append((start, start + size))
        start += size
    return out


# ---------------------------------------------------------------- exactness, generated videos


@pytest.mark.parametrize("name", ["closed420", "open444", "vfr"])
def test_shards_equal_sequential_decode(generated, generated_hashes, n_generated_frames, name):
    N_FRAMES = n_generated_frames
    path, ref = generated[name], generated_hashes[name]
    info = probe(path)
    assert info.n_frames == len(ref) == N_FRAMES
    # sizes 1, 7, 30 and the rest: every boundary lands mid-GOP and the ranges cross keyframes
    got = []
    for a, b in shards(5, [1, 7, 30, N_FRAMES - 5 - 38]):
        got += read_sha1s(path, a, b, info, batch_size=4)
    assert got == ref[5:]
    assert read_sha1s(path, 0, N_FRAMES, info, batch_size=100) == ref
    rng = np.random.default_rng(0)
    for _ in range(2):
        a = int(rng.integers(0, N_FRAMES - 1))
        b = int(rng.integers(a + 1, N_FRAMES + 1))
        assert read_sha1s(path, a, b, info, batch_size=3) == ref[a:b], (a, b)


def test_batches_carry_indices_times_and_shapes(generated):
    info = probe(generated["closed420"])
    batches = list(read_frames(generated["closed420"], 10, 20, info=info, batch_size=4))
    assert [len(b.indices) for b in batches] == [4, 4, 2]
    assert np.concatenate([b.indices for b in batches]).tolist() == list(range(10, 20))
    assert batches[0].indices.dtype == np.int64
    assert batches[0].images.shape == (4, 96, 128, 3) and batches[0].images.dtype == np.uint8
    np.testing.assert_allclose(batches[0].times, np.arange(10, 14) / 25.0)


def test_read_frame_array_matches_sequential_decode(generated, generated_hashes):
    path, ref = generated["open444"], generated_hashes["open444"]
    info = probe(path)
    indices = [0, 3, 3, 11, 12, 13, 50, 95]
    frames = read_frame_array(path, indices, info=info)
    assert frames.shape == (8, 96, 128, 3)
    assert sha1s(frames) == [ref[i] for i in indices]
    assert read_frame_array(path, [], info=info).shape == (0, 96, 128, 3)
    with pytest.raises(ValueError, match="sorted"):
        read_frame_array(path, [5, 3], info=info)


def test_stopping_early_is_clean(generated, generated_hashes):
    frames = read_frames(generated["closed420"], 30, 90, batch_size=2)
    first = next(frames)
    frames.close()  # ends ffmpeg; nothing hangs
    assert sha1s(first.images) == generated_hashes["closed420"][30:32]


# ---------------------------------------------------------------- probe and timestamps


def test_probe_generated(generated):
    closed, open444, vfr = (probe(generated[n]) for n in ("closed420", "open444", "vfr"))
    assert (closed.n_frames, closed.fps, closed.width, closed.height) == (96, 25.0, 128, 96)
    assert (closed.codec, closed.pix_fmt, open444.pix_fmt) == ("h264", "yuv420p", "yuv444p")
    assert closed.keyframes == open444.keyframes == tuple(range(0, 96, 12))
    assert closed.duration_s == pytest.approx(96 / 25)
    assert not closed.variable_frame_rate and not open444.variable_frame_rate
    assert closed.timestamps is None
    assert vfr.variable_frame_rate
    assert vfr.n_frames == 96


def test_time_of_cfr_and_vfr(generated, vfr_pts_ms, n_generated_frames):
    closed, vfr = probe(generated["closed420"]), probe(generated["vfr"])
    assert closed.time_of(50) == pytest.approx(50 / 25)
    assert [round(vfr.time_of(i) * 1000, 6) for i in range(n_generated_frames)] == vfr_pts_ms
    batch = next(read_frames(generated["vfr"], 40, 46, info=vfr, batch_size=6))
    np.testing.assert_allclose(batch.times * 1000, vfr_pts_ms[40:46], atol=1e-9)
    with pytest.raises(ValueError, match="out of range"):
        closed.time_of(96)


def test_video_info_round_trips_through_json(generated):
    for name in ("closed420", "vfr"):
        info = probe(generated[name])
        again = VideoInfo.from_dict(json.loads(json.dumps(info.to_dict())))
        assert again == info
    with pytest.raises(ValueError, match="unknown"):
        VideoInfo.from_dict({**info.to_dict(), "colour": "blue"})


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated", "not a readable video"),
        ("truncated_faststart", "truncated"),
        ("not_video", "not a readable video"),
        ("audio_only", "no video stream"),
    ],
)
def test_bad_files_raise_video_error_naming_the_file(generated, name, message):
    with pytest.raises(VideoError, match=message) as caught:
        probe(generated[name])
    assert generated[name].name in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file") as caught:
        probe(tmp_path / "gone.mp4")
    assert "gone.mp4" in str(caught.value)


def test_file_truncated_after_probing_names_the_frame(generated, n_generated_frames):
    info = probe(generated["faststart"])  # same stream, intact
    cut = generated["truncated_faststart"]
    with pytest.raises(VideoError) as caught:
        list(read_frames(cut, 0, n_generated_frames, info=info, batch_size=16))
    assert cut.name in str(caught.value)
    assert caught.value.where is not None and caught.value.where.startswith("frame ")
    assert 0 < int(caught.value.where.split()[1]) < n_generated_frames
    with pytest.raises(VideoError, match=r"\(frame 80\)"):
        list(read_frames(cut, 80, 90, info=info))


def test_out_of_range_raises_value_error(generated):
    info = probe(generated["closed420"])
    for start, stop in [(-1, 5), (5, 97), (10, 5)]:
        with pytest.raises(ValueError, match=r"\[0, 96\)"):
            next(read_frames(generated["closed420"], start, stop, info=info))
    with pytest.raises(ValueError, match="inside"):
        read_frame_array(generated["closed420"], [0, 96], info=info)
    assert list(read_frames(generated["closed420"], 7, 7, info=info)) == []


def test_missing_ffmpeg_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="install"):
        video.ffmpeg_executable()
    with pytest.raises(FileNotFoundError, match="ffprobe"):
        video.ffprobe_executable()


# ---------------------------------------------------------------- the real videos


def test_probe_real_videos(real_videos, real_hashes):
    m3 = probe(real_videos["m3v1mp4"])
    assert (m3.n_frames, m3.width, m3.height, m3.pix_fmt) == (2330, 640, 480, "yuv444p")
    assert m3.fps == pytest.approx(30.0, abs=1e-3) and not m3.variable_frame_rate
    # 12 key-flagged packets (and 12 I-frames when decoded); ../shared/data/README.md says 13
    assert m3.keyframes == (0, 182, 366, 548, 797, 985, 1173, 1383, 1588, 1794, 2016, 2219)
    assert m3.x264_build == 148  # < 151: FFmpeg must emulate an x264 4:4:4 bug when decoding
    tv = probe(real_videos["test_vid"])
    assert (tv.n_frames, tv.fps, tv.width, tv.height, tv.pix_fmt) == (994, 250.0, 396, 406, "yuv420p")
    assert tv.keyframes == (0, 192, 432, 682, 932) and not tv.variable_frame_rate
    assert len(real_hashes["m3v1mp4"]) == 2330 and len(real_hashes["test_vid"]) == 994


@pytest.mark.parametrize("name", ["m3v1mp4", "test_vid"])
def test_real_shards_equal_sequential_decode(real_videos, real_hashes, name, caplog):
    path, ref = real_videos[name], real_hashes[name]
    info = probe(path)
    n, key = info.n_frames, info.keyframes[1]
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        got = []
        for a, b in shards(key - 30, [1, 7, 100]):  # crosses the second keyframe
            got += read_sha1s(path, a, b, info, batch_size=16)
        assert got == ref[key - 30 : key + 78]
        assert read_sha1s(path, n - 100, n, info, batch_size=32) == ref[n - 100 :]
        rng = np.random.default_rng(1)
        for _ in range(2):
            a = int(rng.integers(0, n - 20))
            b = a + int(rng.integers(1, 20))
            assert read_sha1s(path, a, b, info, batch_size=8) == ref[a:b], (a, b)
        indices = [3, 500, 501, 900, n - 1]
        assert sha1s(read_frame_array(path, indices, info=info)) == [ref[i] for i in indices]
    # every read seeked straight to its keyframe: no fallback was needed
    assert not [r for r in caplog.records if "further back" in r.getMessage()]


def test_unsafe_seek_is_detected_and_falls_back(real_videos, real_hashes, caplog):
    """Without the x264 version, seeking into m3v1mp4 decodes garbage; the reader must notice."""
    path, ref = real_videos["m3v1mp4"], real_hashes["m3v1mp4"]
    blind = dataclasses.replace(probe(path), x264_build=None)
    with caplog.at_level(logging.WARNING, logger=video.__name__):
        assert read_sha1s(path, 182, 190, blind, batch_size=8) == ref[182:190]
    assert any("decode errors" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- the frame-deciding functions, no decoding
# Exact values worked out by hand from the packet tables and frame times below (no ffmpeg runs):
# milliseconds to fail a wrong frame index, time or window, before the decode tests above.

MISSING = PacketTable.missing


def packets(pts, *, dts=None, duration=None, key=None, discard=None):
    """A PacketTable in decode order as ffprobe lists it; None: a missing timestamp."""
    n = len(pts)

    def ints(values, default):
        values = [default] * n if values is None else values
        return np.array([MISSING if v is None else v for v in values], dtype=np.int64).reshape(-1)

    return PacketTable(
        pts=ints(pts, None),
        dts=ints(dts, None),
        duration=ints(duration, 0),
        key=np.array([False] * n if key is None else key, dtype=bool).reshape(-1),
        discard=np.array([False] * n if discard is None else discard, dtype=bool).reshape(-1),
        errors="",
    )


def stream(**fields):
    """ffprobe's description of a 25 fps H.264 stream, with `fields` replaced (None: absent)."""
    s = {"index": 0, "time_base": "1/12800", "r_frame_rate": "25/1", "avg_frame_rate": "25/1"}
    s |= {"width": 128, "height": 96, "codec_name": "h264", "pix_fmt": "yuv420p"}
    s |= fields
    return {k: v for k, v in s.items() if v is not None}


def timing(n_frames=10, *, fps=4.0, timestamps=None, keyframes=(0,), start=1.0):
    """A 6x4 video's probe whose frame i is at start + i / fps s (or start + timestamps[i])."""
    return VideoInfo(
        path="cam.mp4",
        n_frames=n_frames,
        fps=fps,
        width=6,
        height=4,
        codec="h264",
        pix_fmt="yuv420p",
        duration_s=n_frames / fps,
        variable_frame_rate=timestamps is not None,
        keyframes=keyframes,
        timestamps=timestamps,
        start_time_s=start,
    )


def test_index_orders_b_frames_and_drops_edit_list_packets():
    # 10 frames at 25 fps from pts 1024 (0.08 s) in decode order (B-frames after the P-frame they
    # precede), keyframes 0 and 6, after one key packet that the edit list discards.
    order = [-1, 0, 3, 1, 2, 6, 4, 5, 9, 7, 8]
    table = packets(
        [1024 + 512 * i for i in order],
        dts=[512 * k for k in range(11)],
        duration=[512] * 11,
        key=[i in (-1, 0, 6) for i in order],
        discard=[i == -1 for i in order],
    )
    info = video._index(Path("cam.mp4"), stream(index=1, width=320, height=240), table, 148)
    assert info == VideoInfo(
        path="cam.mp4",
        n_frames=10,
        fps=25.0,
        width=320,
        height=240,
        codec="h264",
        pix_fmt="yuv420p",
        duration_s=0.4,
        variable_frame_rate=False,
        keyframes=(0, 6),
        timestamps=None,
        start_time_s=0.08,
        stream_index=1,
        x264_build=148,
    )


def test_index_without_presentation_timestamps_uses_decode_order():
    # an AVI-like stream: no pts, dts one tick of 1/25 s apart, keyframes every third packet
    table = packets([None] * 6, dts=list(range(6)), duration=[1] * 6, key=[k % 3 == 0 for k in range(6)])
    info = video._index(Path("cam.avi"), stream(time_base="1/25"), table, None)
    assert (info.n_frames, info.fps, info.keyframes, info.start_time_s) == (6, 25.0, (0, 3), 0.0)
    assert info.duration_s == 6 / 25 and info.timestamps is None and info.x264_build is None


@pytest.mark.parametrize(("last_duration", "duration_s"), [(7, 0.027), (0, 0.030)])
def test_index_variable_frame_rate_keeps_exact_timestamps(last_duration, duration_s):
    # three frames at 0.5 s + 0, 9 and 20 ms (gaps 9 and 11 ms: 2 ticks apart is already VFR), the
    # last one stored second; its duration is 7 ms, or, absent, the median gap (10 ms)
    table = packets([500, 520, 509], dts=[495, 500, 509], duration=[9, last_duration, 11], key=[True, False, False])
    info = video._index(Path("cam.mp4"), stream(time_base="1/1000", r_frame_rate="1000/1"), table, None)
    assert info.variable_frame_rate and info.n_frames == 3
    assert info.timestamps == (0.0, 0.009, 0.02)  # 9 ms is 0.009 exactly, not 9 * 0.001
    assert info.fps == 100.0  # 2 gaps in 20 ms; r_frame_rate (1000) is the time base, not the rate
    assert (info.duration_s, info.start_time_s, info.keyframes) == (duration_s, 0.5, (0,))


def test_index_ntsc_rate_in_milliseconds_is_the_nominal_rate():
    # 1001 frames at 30000/1001 fps stored with millisecond timestamps (gaps of 33 and 34 ms):
    # constant rate, whose measured rate (29.96973) is within 1e-4 of the nominal one
    ts = [round(k * 1001 / 30) for k in range(1001)]
    table = packets(ts, duration=[33] * 1001, key=[k % 250 == 0 for k in range(1001)])
    info = video._index(
        Path("cam.mp4"), stream(time_base="1/1000", r_frame_rate="30000/1001", avg_frame_rate="0/0"), table, None
    )
    assert info.fps == 30000 / 1001 and not info.variable_frame_rate and info.timestamps is None
    assert info.duration_s == 1001 / (30000 / 1001)  # n / fps, not the last timestamp plus 33 ms
    assert info.keyframes == (0, 250, 500, 750, 1000)


def test_index_two_frames_measure_their_own_rate():
    # two frames 80 ms apart in a stream that says 25 fps: 12.5 fps, 0.16 s
    table = packets([0, 1024], duration=[1024, 512], key=[True, False])
    info = video._index(Path("cam.mp4"), stream(), table, None)
    assert (info.fps, info.duration_s, info.variable_frame_rate) == (12.5, 0.16, False)


def test_index_one_frame_takes_the_average_rate():
    table = packets([1000], key=[True])
    info = video._index(Path("still.mp4"), stream(r_frame_rate="0/0", codec_name=None, pix_fmt=None), table, None)
    assert (info.n_frames, info.fps, info.duration_s, info.start_time_s) == (1, 25.0, 0.0, 1000 / 12800)
    assert (info.codec, info.pix_fmt, info.keyframes) == ("", "", (0,))


@pytest.mark.parametrize(
    ("table", "fields", "message", "where"),
    [
        (packets([]), {}, "its video stream has no frames", None),
        (packets([0], discard=[True]), {}, "its video stream has no frames", None),
        (packets([0, None, 2]), {}, "its frames have no timestamps; remux it (ffmpeg -i in -c copy out.mkv)", None),
        (
            packets([None] * 5, dts=[0, 1, 2, 2, 3]),
            {"time_base": "1/25"},
            "two frames share one timestamp; re-encode it",
            "frame 3",
        ),
        (packets([0]), {"r_frame_rate": "0/0", "avg_frame_rate": "0/0"}, "has one frame and no frame rate", None),
    ],
)
def test_index_refuses_what_it_cannot_index(table, fields, message, where):
    with pytest.raises(VideoError) as caught:
        video._index(Path("bad.mp4"), stream(**fields), table, None)
    assert (caught.value.path, caught.value.message, caught.value.where) == ("bad.mp4", message, where)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30000/1001", 30000 / 1001),
        ("25/1", 25.0),
        ("12.5", 12.5),
        (None, None),
        ("", None),
        ("0/0", None),
        ("0/1", None),
        ("25/0", None),
    ],
)
def test_rate_reads_ffprobe_fractions(text, rate):
    assert video._rate(text) == rate


def test_times_cfr_and_vfr():
    cfr = timing(10, fps=25.0)
    np.testing.assert_array_equal(cfr.times_of([0, 3, 9]), [0.0, 3 / 25, 9 / 25])
    assert cfr.times_of(np.array([2], dtype=np.int32)).dtype == np.float64
    vfr = timing(5, timestamps=(0.0, 0.05, 0.1, 0.12, 0.17))
    np.testing.assert_array_equal(vfr.times_of([4, 0, 3]), [0.17, 0.0, 0.12])
    assert [cfr.time_of(i) for i in (0, 9)] == [0.0, 9 / 25]
    assert [vfr.time_of(i) for i in (0, np.int64(4))] == [0.0, 0.17]
    for bad in (-1, 5):
        with pytest.raises(ValueError, match=rf"^cam\.mp4: frame {bad} is out of range \[0, 5\)$"):
            vfr.time_of(bad)
    with pytest.raises(TypeError):
        vfr.time_of(1.0)


@pytest.mark.parametrize(
    ("info", "lo", "hi"),
    [
        # frames at 1 s + i / 4: windows from the midpoint to each neighbour, open at both ends
        (timing(10), [-np.inf, 1.125, 1.375, 2.875, 3.125], [1.125, 1.375, 1.625, 3.125, np.inf]),
        # frames at 1 s + 0, 0.25, 0.75, 1, 2
        (
            timing(5, timestamps=(0.0, 0.25, 0.75, 1.0, 2.0)),
            [-np.inf, 1.125, 1.5, 1.875, 2.5],
            [1.125, 1.5, 1.875, 2.5, np.inf],
        ),
    ],
)
def test_bounds_are_midpoints_to_the_neighbours(info, lo, hi):
    indices = np.array([0, 1, 2, info.n_frames - 2, info.n_frames - 1])
    got_lo, got_hi = video._bounds(info, indices)
    np.testing.assert_array_equal(got_lo, lo)
    np.testing.assert_array_equal(got_hi, hi)


def test_check_range_accepts_every_range_inside_the_video():
    info = timing(10)
    for start, stop in [(0, 0), (3, 3), (0, 10), (np.int64(2), np.int64(5))]:
        got = video._check_range(info, start, stop)
        assert got == (start, stop) and all(type(v) is int for v in got)
    for start, stop in [(-1, 5), (5, 11), (6, 5)]:
        with pytest.raises(ValueError, match=rf"^cam\.mp4: frames \[{start}, {stop}\) are not inside \[0, 10\)$"):
            video._check_range(info, start, stop)


@pytest.mark.parametrize(
    ("keyframes", "first", "tier", "seek"),
    [
        ((0, 40, 72, 120), 50, "keyframe", 40),
        ((0, 40, 72, 120), 40, "keyframe", 40),  # a keyframe seeks to itself
        ((0, 40, 72, 120), 130, "keyframe", 120),
        ((0, 40, 72, 120), 10, "keyframe", None),  # keyframe 0: decode from the start
        ((0, 40, 72, 120), 50, "sequential", None),
        ((0, 40, 72, 120), 75, "margin", 40),  # 72 - 32 = 40 exactly
        ((0, 40, 72, 120), 110, "margin", 40),  # measured from keyframe 72, not from frame 110
        ((0, 40, 72, 120), 120, "margin", 72),
        ((0, 40, 72, 120), 50, "margin", None),
        ((10, 50), 5, "keyframe", None),  # before the first key-flagged packet
        ((10, 50), 5, "margin", None),
        ((10, 50), 60, "keyframe", 50),
    ],
)
def test_seek_point(keyframes, first, tier, seek):
    assert video._seek_point(timing(200, keyframes=keyframes), first, tier) == seek


def test_pass_selects_the_runs_of_wanted_frames():
    info = timing(10)  # frame i at 1 s + i / 4
    wanted = np.array([0, 1, 2, 5, 9])
    p = video._Pass(Path("cam.mp4"), info, wanted, 4, "margin", threads=3)
    assert (p.path, p.info, p.seek, p.tier, p.threads, p.frame_bytes) == (Path("cam.mp4"), info, 4, "margin", 3, 72)
    np.testing.assert_array_equal(p.wanted, wanted)
    np.testing.assert_array_equal(p.lo, [-np.inf, 1.125, 1.375, 2.125, 3.125])
    np.testing.assert_array_equal(p.hi, [1.125, 1.375, 1.625, 2.375, np.inf])
    np.testing.assert_array_equal(p.run_lo, [-np.inf, 2.125, 3.125])
    np.testing.assert_array_equal(p.run_hi, [1.625, 2.375, np.inf])
    assert p._expression() == "lt(t,1.625)+gte(t,2.125)*lt(t,2.375)+gte(t,3.125)"
    # every frame's own time, in microseconds as showinfo logs it: selected exactly when wanted
    assert [p._selected(1_000_000 + 250_000 * i) for i in range(10)] == [i in wanted for i in range(10)]
    # the select filter's windows are [lo, hi): a boundary belongs to the frame after it
    assert [p._selected(us) for us in (1_624_999, 1_625_000, 2_124_999, 2_125_000)] == [True, False, False, True]
    whole = video._Pass(Path("cam.mp4"), info, np.arange(10), None, "sequential")
    assert whole._expression() == "1" and whole.threads is None


def test_read_frame_array_groups_frames_into_passes(monkeypatch, tmp_path):
    """Which passes read which frames, and where each frame lands, with a decoder that writes index % 256."""
    path = tmp_path / "cam.mp4"  # never opened: no probe, no ffmpeg
    info = dataclasses.replace(timing(200, keyframes=(0, 40, 72, 120)), path=str(path))
    passes = []

    def decode(p, info_, wanted, into, threads=None):
        passes.append((p, wanted.dtype, wanted.tolist()))
        for k, index in enumerate(wanted.tolist()):
            io.BytesIO(bytes([index % 256]) * 72).readinto(into(k))  # as ffmpeg's pipe fills it
            yield k

    monkeypatch.setattr(video, "_decode", decode)
    monkeypatch.setattr(video, "probe", lambda p: info if p == str(path) else pytest.fail(f"probed {p!r}"))
    indices = [3, 3, 10, 39, 40, 45, 130, 199]
    frames = read_frame_array(str(path), indices, info=info)
    assert frames.shape == (8, 4, 6, 3) and frames.dtype == np.uint8
    assert frames.reshape(8, -1).min(axis=1).tolist() == frames.reshape(8, -1).max(axis=1).tolist() == indices
    # a new pass where seeking to a frame's keyframe would skip frames already read by this one
    assert passes == [(path, np.int64, [3, 10, 39]), (path, np.int64, [40, 45]), (path, np.int64, [130, 199])]
    passes.clear()
    assert read_frame_array(str(path), np.int64(77)).reshape(-1).tolist() == [77] * 72  # probes, one frame
    assert read_frame_array(str(path), [0, 199], info=dataclasses.replace(info, keyframes=())).shape == (2, 4, 6, 3)
    assert passes == [(path, np.int64, [77]), (path, np.int64, [0, 199])]  # no keyframes: one pass from 0
    assert read_frame_array(str(path), [], info=info).shape == (0, 4, 6, 3)
    for bad, message in [
        ([[1, 2]], "must be a 1-D sequence of integers"),
        ([1.5], "must be a 1-D sequence of integers"),
        ([5, 3], "must be sorted ascending"),
        ([-1, 5], r"must be inside \[0, 200\)"),
        ([0, 5, 200], r"must be inside \[0, 200\)"),
    ]:
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: frame indices {message}$"):
            read_frame_array(str(path), bad, info=info)


def test_read_frames_batches_carry_their_frames(monkeypatch, tmp_path):
    """Batch boundaries, indices, times and images, with a decoder that writes index % 256."""
    path = tmp_path / "cam.mp4"  # never opened: no probe, no ffmpeg
    info = dataclasses.replace(timing(20), path=str(path))  # frame i at 1 s + i / 4
    calls = []

    def decode_into(p, info_, start, stop, into):
        calls.append((p, info_, start, stop))
        for k in range(stop - start):
            io.BytesIO(bytes([start + k]) * 72).readinto(into(k))  # as ffmpeg's pipe fills it
            yield k

    monkeypatch.setattr(video, "decode_into", decode_into)
    monkeypatch.setattr(video, "probe", lambda p: info if p == path else pytest.fail(f"probed {p!r}"))
    batches = list(read_frames(path, 3, 13, info=info, batch_size=4))  # all kept: no batch reuses another's array
    assert [b.indices.tolist() for b in batches] == [[3, 4, 5, 6], [7, 8, 9, 10], [11, 12]]
    for b in batches:
        assert b.indices.dtype == np.int64 and b.images.dtype == np.uint8 and b.images.shape[1:] == (4, 6, 3)
        assert b.images.reshape(len(b.images), -1).min(axis=1).tolist() == b.indices.tolist()
        assert b.images.reshape(len(b.images), -1).max(axis=1).tolist() == b.indices.tolist()
        np.testing.assert_array_equal(b.times, b.indices / 4)  # from the first frame, not the container's start
    assert calls == [(path, info, 3, 13)]
    assert [b.indices.tolist() for b in read_frames(path, 18, 20)] == [[18], [19]]  # probed; one frame a batch
    assert [b.indices.tolist() for b in read_frames(path, 0, 2, info=info, batch_size=2)] == [[0, 1]]
    with pytest.raises(ValueError, match=r"^batch_size must be at least 1, got 0$"):
        next(read_frames(path, 0, 2, info=info, batch_size=0))
    with pytest.raises(ValueError, match=r"frames \[5, 21\) are not inside \[0, 20\)"):
        next(read_frames(path, 5, 21, info=info))


def test_decode_into_hands_its_range_to_the_decoder(monkeypatch):
    info = timing(20)
    calls = []

    def decode(p, info_, wanted, into, threads=None):
        calls.append((p, info_, wanted.dtype, wanted.tolist(), into, threads))
        yield from range(len(wanted))

    monkeypatch.setattr(video, "_decode", decode)
    into = bytearray
    assert list(video.decode_into("cam.mp4", info, np.int64(2), 5, into, threads=2)) == [0, 1, 2]
    assert calls == [(Path("cam.mp4"), info, np.int64, [2, 3, 4], into, 2)]
    with pytest.raises(ValueError, match=r"frames \[5, 21\) are not inside \[0, 20\)"):
        next(video.decode_into("cam.mp4", info, 5, 21, into))
    assert len(calls) == 1


def test_video_info_from_dict_fills_keyframes_and_names_what_is_missing():
    d = timing(5).to_dict()
    del d["keyframes"]  # no keyframes recorded: reads seek from frame 0
    assert VideoInfo.from_dict(d) == dataclasses.replace(timing(5), keyframes=())
    with pytest.raises(ValueError, match=r"^incomplete VideoInfo: .*missing .*'fps'"):
        VideoInfo.from_dict({"path": "cam.mp4", "n_frames": 5})


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        (b"[mov] moov atom not found\ncam.mp4: Invalid data\n  cam.mp4: end of file  \n\n", "cam.mp4: end of file"),
        (b"caf\xe9.mp4: No such file\n", "caf\ufffd.mp4: No such file"),  # not UTF-8: replaced, not refused
        ("first\nlast\n", "last"),
        (b" \n", "ffprobe gave no reason"),
        (None, "ffprobe gave no reason"),
    ],
)
def test_last_line_is_what_ffmpeg_said_last(stderr, said):
    assert video._last_line(stderr) == said
