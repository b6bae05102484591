import json
import subprocess

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from posecore.synth import KEYPOINTS, SynthConfig, is_complete, make_archive


def decode_all(path, config) -> np.ndarray:
    """Every frame of a video, (T, H, W, 3) uint8, from the ffmpeg command line."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, config.height, config.width, 3)


def ground_truth(archive, video: int) -> pd.DataFrame:
    return pq.read_table(archive.ground_truth[video]).to_pandas()


def test_every_file_is_there_and_the_video_sheet_lists_the_videos(archive):
    for path in [*archive.files(), archive.manifest]:
        assert path.is_file(), path
    sheet = pd.read_csv(archive.video_sheet, sep="\t")
    assert list(sheet.columns) == ["video", "path"]
    assert list(sheet.video) == ["mouse-000", "mouse-001"]
    assert [p.endswith(f"videos/{v}.mp4") for v, p in zip(sheet.video, sheet.path, strict=True)] == [True, True]


def test_ffprobe_sees_h264_yuv420p_with_every_frame(archive):
    config = archive.config
    for path in archive.videos:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-of", "json", "-show_entries",
             "stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        stream = json.loads(out.stdout)["streams"][0]
        assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
        assert (stream["width"], stream["height"]) == (config.width, config.height)
        assert int(stream["nb_read_frames"]) == config.n_frames and stream["r_frame_rate"] == "30/1"


def test_ground_truth_is_one_row_per_frame_and_keypoint_inside_the_frame(archive):
    config = archive.config
    table = ground_truth(archive, 1)
    assert list(table.columns) == ["video", "frame", "time_s", "instance", "keypoint", "x", "y", "visible"]
    assert len(table) == config.n_frames * len(KEYPOINTS)
    assert (table.video == "mouse-001").all() and (table.instance == 0).all() and table.visible.dtype == bool
    np.testing.assert_allclose(table.time_s, table.frame / config.fps)
    assert list(table.keypoint[: len(KEYPOINTS)]) == list(KEYPOINTS)
    assert table.x.between(0, config.width - 1).all() and table.y.between(0, config.height - 1).all()
    assert not table.visible.all()  # occlusions happen


def test_dlc_labels_read_with_pandas_and_equal_the_ground_truth(archive):
    config = archive.config
    n_hidden = 0
    for video, label_file in enumerate(archive.label_files):
        labels = pd.read_csv(label_file, header=[0, 1, 2], index_col=0)
        assert labels.columns.names == ["scorer", "bodyparts", "coords"]
        assert set(labels.columns.get_level_values("scorer")) == {"synth"}
        assert list(labels.columns.get_level_values("bodyparts")[::2]) == list(KEYPOINTS)
        assert list(labels.columns.get_level_values("coords")[:2]) == ["x", "y"]
        assert len(labels) == config.n_labeled_per_video
        frames = [int(p.rsplit("img", 1)[1][:5]) for p in labels.index]
        assert labels.index[0] == f"labeled-data/mouse-{video:03d}/img{frames[0]:05d}.png"
        assert all((archive.root / p).is_file() for p in labels.index)
        assert frames == sorted(set(frames)) and frames[-1] - frames[0] > config.n_frames / 2  # spread out
        truth = ground_truth(archive, video).set_index(["frame", "keypoint"])
        for frame, (_, row) in zip(frames, labels.iterrows(), strict=True):
            for name in KEYPOINTS:
                x, y = row[("synth", name, "x")], row[("synth", name, "y")]
                expected = truth.loc[(frame, name)]
                if expected.visible:
                    assert (x, y) == (expected.x, expected.y)  # exact, through the CSV
                else:
                    assert np.isnan(x) and np.isnan(y)
                    n_hidden += 1
    assert n_hidden > 0


def test_labeled_pngs_are_the_decoded_video_frames(archive):
    config = archive.config
    for video, images in enumerate(archive.images):
        decoded = decode_all(archive.videos[video], archive.config)
        assert len(decoded) == config.n_frames
        for path in images:
            png = mpimg.imread(path)
            assert png.shape == (config.height, config.width, 3)
            frame = int(path.stem[3:])
            np.testing.assert_array_equal(np.rint(png * 255).astype(np.uint8), decoded[frame])


def test_the_video_shows_the_ears_where_the_ground_truth_says(archive):
    table = ground_truth(archive, 0)
    decoded = decode_all(archive.videos[0], archive.config).astype(float)
    ears = table[table.keypoint.isin(["left_ear", "right_ear"]) & table.visible]
    rgb = decoded[ears.frame, np.rint(ears.y).astype(int), np.rint(ears.x).astype(int)]  # (n, 3)
    assert np.median(rgb[:, 0] - rgb[:, 1]) > 40  # pink ears; floor and body are near grey-brown


def test_same_seed_same_archive_other_seed_another(tmp_path):
    config = SynthConfig(n_videos=1, n_frames=20, n_labeled_per_video=4, seed=5)
    a, b = make_archive(tmp_path / "a", config), make_archive(tmp_path / "b", config)
    c = make_archive(tmp_path / "c", SynthConfig(n_videos=1, n_frames=20, n_labeled_per_video=4, seed=6))
    assert pq.read_table(a.ground_truth[0]).equals(pq.read_table(b.ground_truth[0]))
    assert a.label_files[0].read_text() == b.label_files[0].read_text()
    assert not pq.read_table(a.ground_truth[0]).equals(pq.read_table(c.ground_truth[0]))


def test_a_complete_archive_is_kept_and_an_incomplete_or_different_one_remade(tmp_path):
    config = SynthConfig(n_videos=1, n_frames=20, n_labeled_per_video=4)
    archive = make_archive(tmp_path, config)
    stamp = archive.manifest.stat().st_mtime_ns
    assert make_archive(tmp_path, config).manifest.stat().st_mtime_ns == stamp  # nothing rewritten
    archive.images[0][0].unlink()
    assert not is_complete(archive)
    assert is_complete(make_archive(tmp_path, config))
    bigger = make_archive(tmp_path, SynthConfig(n_videos=2, n_frames=20, n_labeled_per_video=4))
    assert json.loads(bigger.manifest.read_text())["config"]["n_videos"] == 2
    smaller = make_archive(tmp_path, config)  # the second video's files go with the old manifest
    assert not (tmp_path / "videos" / "mouse-001.mp4").exists() and is_complete(smaller)


def test_labeler_jitter_is_small_and_off_by_default(tmp_path):
    config = SynthConfig(n_videos=1, n_frames=30, n_labeled_per_video=10, label_jitter_std=0.5, occlusion_rate=0)
    archive = make_archive(tmp_path, config)
    labels = pd.read_csv(archive.label_files[0], header=[0, 1, 2], index_col=0).to_numpy().reshape(10, -1, 2)
    truth = ground_truth(archive, 0)
    frames = [int(p.stem[3:]) for p in archive.images[0]]
    expected = truth.set_index("frame").loc[frames, ["x", "y"]].to_numpy().reshape(10, -1, 2)
    error = labels - expected
    assert 0.3 < error.std() < 0.7 and np.abs(error).max() < 3


@pytest.mark.parametrize(
    ("change", "named"),
    [({"width": 161}, "width"), ({"n_labeled_per_video": 400}, "n_labeled_per_video"), ({"crf": 60}, "crf")],
)
def test_bad_settings_are_refused_by_name(change, named):
    with pytest.raises(ValueError, match=named):
        SynthConfig(**change)
