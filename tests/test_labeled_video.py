import logging
import shutil

import numpy as np
import pytest
from PIL import ImageFont

from posecore.errors import InputError
from posecore.io.trajectories import Provenance, keypoint_table, write_atomic
from posecore.io.video import probe, read_frame_array
from posecore.labeled_video import LabelStyle, _Palette, draw_frame, label_video
from posecore.qc.clips import keypoint_colors

GREY = 128.0
COLORS = np.asarray(keypoint_colors(3), dtype=np.float64)  # (K, 3) the keypoints' colours


def blend(color: np.ndarray, alpha: float) -> np.ndarray:
    return color * alpha + GREY * (1 - alpha)


def palette(edges=()) -> _Palette:
    return _Palette(
        colors=COLORS.astype(np.uint8),
        edges=np.asarray(edges, dtype=np.int64).reshape(-1, 2),
        radius=3,
        line_width=1,
        font=ImageFont.load_default(),
    )


def test_points_are_as_opaque_as_their_score_and_low_ones_are_hidden():
    image = np.full((40, 60, 3), GREY, dtype=np.uint8)
    points = np.array([[[10, 10, 1.0], [30, 10, 0.5], [50, 10, 0.05]]], dtype=np.float32)[None]  # (T=1, I=1, K=3, 3)
    points[0, 0, 0, :2] = [10.4, 9.6]  # drawn centred on the nearest pixel, (10, 10)
    drawn = draw_frame(image, points, palette(), LabelStyle(min_score=0.1), "").astype(np.float64)
    np.testing.assert_allclose(drawn[10, 10], COLORS[0], atol=1)
    disc = np.argwhere((drawn != GREY).any(axis=-1) & (np.arange(60) < 20))  # (N, 2) rows, columns of point 0
    np.testing.assert_array_equal(disc.mean(axis=0), [10, 10])
    assert disc.min(axis=0).tolist() == [7, 7] and disc.max(axis=0).tolist() == [13, 13], "radius 3"
    np.testing.assert_allclose(drawn[10, 30], blend(COLORS[1], 0.5), atol=2)
    np.testing.assert_array_equal(drawn[10, 50], [GREY] * 3)  # below min_score: not drawn
    untouched = np.ones((40, 60), dtype=bool)
    untouched[5:16, 5:36] = False
    assert (drawn[untouched] == GREY).all(), "nothing drawn away from the points"


def test_skeleton_edges_take_the_weaker_end_and_trails_fade_with_age():
    image = np.full((40, 60, 3), GREY, dtype=np.uint8)
    now = np.array([[10, 10, 1.0], [30, 10, 0.5], [np.nan, np.nan, 1.0]], dtype=np.float32)  # (K, 3)
    history = np.stack([now, now, now])[:, None].copy()  # (T=3, I=1, K, 3)
    history[:, 0, 0] = [[10, 30, 1.0], [20, 30, 1.0], [10, 10, 1.0]]  # keypoint 0 moved along row 30, then up
    drawn = draw_frame(image, history, palette(edges=[(0, 1), (1, 2)]), LabelStyle(trail=2), "").astype(np.float64)
    edge = (COLORS[0].astype(np.int64) + COLORS[1].astype(np.int64)) // 2
    np.testing.assert_allclose(drawn[10, 20], blend(edge, 0.5), atol=2)  # the edge at the weaker end's opacity
    np.testing.assert_allclose(drawn[30, 15], blend(COLORS[0], round(255 / 3) / 255), atol=2)  # oldest segment
    assert np.abs(drawn[:, 40:] - GREY).max() == 0, "no edge to the NaN keypoint"


def decoded_track(path, row: int, keypoint: int) -> np.ndarray:
    """float (F,) mean x of the pixels of keypoint `keypoint`'s colour in `row` of every frame (the disc's centre)."""
    frames = read_frame_array(path, np.arange(probe(path).n_frames)).astype(np.float64)  # (F, H, W, 3)
    close = np.linalg.norm(frames[:, row] - COLORS[keypoint], axis=-1) < 30  # (F, W)
    assert close.any(axis=1).all(), "the point is drawn on every frame"
    return (close * np.arange(frames.shape[2])).sum(axis=1) / close.sum(axis=1)


def test_a_frame_range_is_written_as_h264_with_each_frames_own_points(grey_video_with_track, tmp_path):
    video, trajectories, peaks = grey_video_with_track(n_frames=30)
    out = tmp_path / "labeled.mp4"
    style = LabelStyle(radius=3, show_frame=False, crf=0)
    written = label_video(video, trajectories, out, style=style, start=10, stop=25, progress=False)
    assert written.frames == (10, 25) and written.keypoint_names == ("a", "b", "c")
    info = probe(out)
    assert (info.n_frames, info.width, info.height, info.codec, info.pix_fmt) == (15, 64, 48, "h264", "yuv420p")
    assert info.fps == pytest.approx(25.0)
    np.testing.assert_allclose(decoded_track(out, 8, 0), peaks[10:25, 0, 0], atol=1)  # yuv420p: colour in 2x2
    frames = read_frame_array(out, [0]).astype(np.float64)
    np.testing.assert_allclose(frames[0, 8, round(peaks[10, 0, 0])], COLORS[0], atol=16)
    np.testing.assert_allclose(frames[0, 40:, :], GREY, atol=3)  # below the points: the video as it was
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left"


def test_odd_frame_sizes_are_padded_without_moving_the_points(grey_video_with_track, tmp_path):
    video, trajectories, peaks = grey_video_with_track(n_frames=8, size=(63, 47))
    out = tmp_path / "odd.mp4"
    label_video(video, trajectories, out, style=LabelStyle(radius=3, show_frame=False, crf=0), progress=False)
    info = probe(out)
    assert (info.n_frames, info.width, info.height) == (8, 64, 48)
    np.testing.assert_allclose(decoded_track(out, 8, 0), peaks[:8, 0, 0], atol=1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ({"track_frames": 40}, r"holds frames 0\.\.39, but .*grey\.mp4 has 30 frames \(0\.\.29\): .*another video"),
        ({"track_fps": 30}, r"frame 29 is at 0\.9667 s in the trajectories but at 1\.1600 s in .*grey\.mp4"),
    ],
)
def test_trajectories_of_another_video_are_refused_naming_both(grey_video_with_track, tmp_path, make, message):
    video, trajectories, _ = grey_video_with_track(**make)
    out = tmp_path / "labeled.mp4"
    with pytest.raises(InputError, match=rf"grey\.parquet: {message}"):
        label_video(video, trajectories, out, progress=False)
    assert not out.exists()


def test_points_outside_the_frame_are_another_videos(grey_video_with_track, tmp_path):
    video, trajectories, peaks = grey_video_with_track()
    peaks[5, 1, 0] = 200.0
    write_atomic(keypoint_table(np.arange(30), np.arange(30) / 25, peaks, ("a", "b", "c")), trajectories)
    with pytest.raises(InputError, match=r"grey\.parquet: points reach x = 200\.0 px, but .*grey\.mp4 is 64 px wide"):
        label_video(video, trajectories, tmp_path / "labeled.mp4", progress=False)


def test_the_frame_count_and_size_in_the_provenance_are_checked(grey_video_with_track, tmp_path):
    video, trajectories, peaks = grey_video_with_track()
    info = probe(video)
    other = type(info)(**{**info.__dict__, "n_frames": 31, "width": 96})
    table = keypoint_table(np.arange(30), np.arange(30) / 25, peaks, ("a", "b", "c"))
    write_atomic(table, trajectories, Provenance.for_video("ab" * 32, {}, video, info=other))
    message = r"was predicted on .*grey\.mp4, 31 frames of 96x48; .* has 30 frames of 64x48"
    with pytest.raises(InputError, match=message):
        label_video(video, trajectories, tmp_path / "labeled.mp4", progress=False)
    write_atomic(table, trajectories, Provenance.for_video("ab" * 32, {}, video, info=info))
    label_video(video, trajectories, tmp_path / "labeled.mp4", progress=False)
    assert probe(tmp_path / "labeled.mp4").n_frames == 30


def test_a_provenance_naming_another_file_of_another_size_is_refused(grey_video_with_track, tmp_path, caplog):
    video, trajectories, peaks = grey_video_with_track()
    table = keypoint_table(np.arange(30), np.arange(30) / 25, peaks, ("a", "b", "c"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name, size in (("mouse-02.mp4", 10), ("grey.mp4", 10)):
        (elsewhere / name).write_bytes(b"0" * size)
        write_atomic(table, trajectories, Provenance.for_video("ab" * 32, {}, elsewhere / name))
        if name == "mouse-02.mp4":
            message = r"was predicted on .*mouse-02\.mp4 \(10 bytes\); .*grey\.mp4 is another file"
            with pytest.raises(InputError, match=message):
                label_video(video, trajectories, tmp_path / "labeled.mp4", progress=False)
        else:  # the same name: a copy that changed since, which the frame checks passed
            with caplog.at_level(logging.WARNING, logger="posecore.labeled_video"):
                label_video(video, trajectories, tmp_path / "labeled.mp4", progress=False)
            assert "of another size" in caplog.text


def test_bad_skeletons_and_frame_ranges_name_what_is_wrong(grey_video_with_track, tmp_path):
    video, trajectories, _ = grey_video_with_track()
    out = tmp_path / "labeled.mp4"
    with pytest.raises(InputError, match=r"grey\.parquet: skeleton edge \('a', 'paw'\) names 'paw', not one of"):
        label_video(video, trajectories, out, skeleton=[("a", "paw")], progress=False)
    with pytest.raises(InputError, match=r"grey\.mp4: frames \[20, 31\) are not inside \[0, 30\)"):
        label_video(video, trajectories, out, start=20, stop=31, progress=False)
    with pytest.raises(InputError, match=r"grey\.parquet: keypoint 'c' is not one of \['a', 'b'\]"):
        label_video(video, trajectories, out, keypoint_names=["a", "b"], progress=False)
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        LabelStyle(preset="quick")
    assert not out.exists()


def test_the_archives_video_folder_is_taken_and_a_folder_of_several_videos_refused(grey_video_with_track, tmp_path):
    video, trajectories, _ = grey_video_with_track(n_frames=6)
    archive = tmp_path / "trajectories" / "demo"
    for name in ("grey", "other"):
        (archive / f"video={name}").mkdir(parents=True)
        shutil.copy(trajectories, archive / f"video={name}" / "part-0.parquet")
    out = tmp_path / "labeled.mp4"
    label_video(video, archive / "video=grey", out, progress=False)
    assert probe(out).n_frames == 6
    with pytest.raises(InputError, match=r"demo: holds the videos \['grey', 'other'\]; say which one"):
        label_video(video, archive, out, progress=False)
