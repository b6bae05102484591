import numpy as np
import pytest

from posecore.io.atomic import atomic_path
from posecore.io.ffmpeg_tools import h264_command, pipe_frames
from posecore.io.video import probe, read_frame_array


def test_h264_command_encodes_piped_frames_and_pads_odd_sizes(tmp_path):
    y, x = np.mgrid[0:21, 0:33]
    frames = np.stack([np.stack([x * 7 + i, y * 11, np.full_like(x, 100)], -1) for i in range(5)]).astype(np.uint8)
    out = tmp_path / "odd.mp4"
    pipe_frames(h264_command(out, (33, 21), 12.5, crf=0, preset="ultrafast"), frames, "writing odd.mp4")
    info = probe(out)
    assert (info.n_frames, info.width, info.height, info.codec, info.pix_fmt) == (5, 34, 22, "h264", "yuv420p")
    assert info.fps == pytest.approx(12.5)
    decoded = read_frame_array(out, [2])[0]
    # The padding, at the bottom and right, repeats the last row and column.
    np.testing.assert_array_equal(decoded[21, :33], decoded[20, :33])
    np.testing.assert_array_equal(decoded[:21, 33], decoded[:21, 32])
    # crf 0 is lossless in yuv420p; the RGB -> YUV -> RGB round trip is close, not equal (an
    # even-sized copy of these frames comes back within 8 as well: the edge is not worse).
    assert np.abs(decoded[:21, :33].astype(int) - frames[2]).max() <= 8


def test_a_failing_frame_source_stops_ffmpeg_and_leaves_no_file(tmp_path):
    def frames():
        yield from np.zeros((3, 16, 16, 3), dtype=np.uint8)
        raise RuntimeError("decoding failed at frame 3")

    out = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError, match="decoding failed at frame 3"), atomic_path(out) as tmp:
        pipe_frames(h264_command(tmp, (16, 16), 25, crf=23, preset="ultrafast"), frames(), "writing partial.mp4")
    assert list(tmp_path.iterdir()) == []
