import subprocess

import numpy as np

from posecore.synth.media import decode_frames, encode_video, truncate_video


def test_encode_then_decode_is_close_and_decode_picks_the_asked_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.linspace(20, 230, 10).astype(np.uint8)[:, None, None, None], 3, axis=-1)
    frames = np.broadcast_to(frames, (10, 64, 96, 3)).copy()
    frames[:, 20:40, 30:60] = rng.integers(0, 255, size=3, dtype=np.uint8)  # a coloured block
    path = tmp_path / "v.mp4"
    encode_video(iter(frames), path, 96, 64, 25.0, crf=16)
    picked = decode_frames(path, np.array([0, 3, 9]), 96, 64)
    assert picked.shape == (3, 64, 96, 3) and picked.dtype == np.uint8
    assert np.abs(picked.astype(int) - frames[[0, 3, 9]]).mean() < 2


def test_a_truncated_video_makes_ffmpeg_complain_and_comes_up_short(archive, tmp_path):
    broken = truncate_video(archive.videos[0], tmp_path / "broken.mp4", fraction=0.5)
    assert broken.stat().st_size == archive.videos[0].stat().st_size // 2
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(broken), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True
    )
    assert decode.stderr  # "partial file", "Invalid data found when processing input", ...
    assert len(decode.stdout) < archive.config.n_frames * archive.config.width * archive.config.height * 3
