import dataclasses
import hashlib
import json
import logging

import numpy as np
import pytest

from posecore.io import video
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
