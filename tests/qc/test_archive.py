"""Archive QC: posecore.qc.archive, with its parts in posecore.qc.tracks, .clips and .archive_html."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.qc.archive import ArchiveConfig, archive_qc
from posecore.qc.archive_html import archive_section, slug
from posecore.qc.clips import draw_points
from posecore.qc.failures import find_failures
from posecore.qc.inputs import read_probes
from posecore.qc.tracks import gap_lengths, worst_window


def _qc(inputs, config, **changes):
    arguments = {
        "keypoints": inputs.keypoints,
        "probes": read_probes(inputs.probe_jsons),
        "videos": inputs.videos,
        "failures": find_failures(inputs.logs_dir, "demo", inputs.videos, trajectories_dir=inputs.trajectories_dir),
        "infer_seconds": {"mouse-000": 4.0},
        "config": config,
    } | changes
    return archive_qc(inputs.trajectories_dir, **arguments)


@pytest.fixture(scope="module")
def qc(archive_inputs, archive_config):
    return _qc(archive_inputs, archive_config)


@pytest.fixture(scope="module")
def section(qc, archive_inputs):
    return archive_section(qc, video_paths=archive_inputs.video_paths)


def _low_by_keypoint(path, threshold):
    rows = pq.read_table(path).to_pandas()
    low = ~(rows["score"] >= threshold)  # NaN scores are low
    return low.groupby(rows["keypoint"].astype(str)).mean().to_dict()


def test_numbers_equal_what_was_planted(qc, archive_inputs, archive_config):
    videos = {v.name: v for v in qc.videos}
    clean, short = videos["mouse-000"], videos["mouse-001"]
    assert (clean.status, clean.n_frames, clean.n_probed) == ("ok", 60, 60)
    assert (short.status, short.n_frames, short.n_probed) == ("incomplete", 50, 60)
    assert clean.jump_px == pytest.approx(0.1 * np.hypot(160, 128))
    assert clean.n_jumps == 2, "the tail tip jumps out in frame 40 and back in frame 41"
    assert (clean.longest_gap, clean.n_gaps) == (10, 1), "snout low in frames 20-29"
    assert (short.longest_gap, short.n_gaps, short.n_jumps) == (3, 1, 0), "tail base missing in frames 5-7"
    # the 30-frame stretch with the most flagged points: frames 20-29 and 40-41, the earliest such
    assert (clean.window, clean.window_flags) == ((12, 42), 12)
    assert clean.throughput_fps == pytest.approx(60 / 4.0)
    for video in (clean, short):
        expected = _low_by_keypoint(archive_inputs.trajectories_dir / f"video={video.name}" / "part-0.parquet", 0.5)
        assert video.low_by_keypoint == pytest.approx(expected)
    assert clean.low_by_keypoint["snout"] == pytest.approx(10 / 60)
    assert clean.provenance == {"posecore_version": "0.1.0", "model_hash": "ab12cd34"}


def test_failed_video_is_first_with_the_error_from_its_log(qc, archive_inputs):
    assert [(v.name, v.status) for v in qc.videos] == [
        ("mouse-002", "failed"),
        ("mouse-001", "incomplete"),
        ("mouse-000", "ok"),
    ]
    failed = qc.videos[0]
    assert failed.probe is None and failed.n_frames == 0
    assert failed.failure.startswith("probe_video failed")
    assert f"VideoError: {archive_inputs.video_paths['mouse-002']}: truncated" in failed.failure


def test_section_lists_failures_and_the_summary_worst_first(section, page):
    shown = page(section.html())
    assert list(shown.rows("failures")) == ["mouse-002"]
    assert "VideoError" in shown.rows("failures")["mouse-002"]["error"]
    rows = shown.rows("archive")
    assert list(rows) == ["mouse-002", "mouse-001", "mouse-000"]
    assert rows["mouse-001"]["frames (traced / probed)"] == "50 / 60"
    assert rows["mouse-002"]["frames (traced / probed)"] == "– / –"
    assert rows["mouse-000"]["jumps"] == "2 (>20 px)"
    assert rows["mouse-000"]["longest gap (frames)"] == "10"
    assert rows["mouse-000"]["worst keypoint"] == "snout (16.7 %)"
    assert rows["mouse-000"]["inference (frames/s)"] == "15.0"
    assert rows["mouse-001"]["inference (frames/s)"] == "–"
    keypoints = shown.rows("keypoints")
    assert list(keypoints) == ["all videos", "mouse-001", "mouse-000"]
    assert keypoints["all videos"]["snout"] == f"{100 * 10 / 110:.1f} %", "10 low of 60 + 50 frames"
    assert "Sorted worst first" in shown.plain


def test_worst_frames_are_read_and_drawn_for_each_shown_video(section, archive_config):
    names = [f.name for f in section.figures]
    assert names == [
        "archive-keypoints",
        "archive-scores",
        "archive-trajectories--mouse-001",
        "archive-frames--mouse-001",
        "archive-trajectories--mouse-000",
        "archive-frames--mouse-000",
    ]
    frames = {f.name: f for f in section.figures}["archive-frames--mouse-000"]
    # the jumps first, then the earliest of the low-score frames: 4 panels of the stretch 12-41
    assert "frames 12–41" in frames.caption and "shown (20, 21, 40, 41)" in frames.caption
    image = Image.open(io.BytesIO(frames.png))
    assert image.mode == "P" and image.width > 3 * 256
    assert len(frames.png) < 400_000


def test_clips_are_small_h264_embedded_and_decodable(section, page, tmp_path):
    assert [c.name for c in section.clips] == ["archive-clip--mouse-001", "archive-clip--mouse-000"]
    sources = [v["src"] for v in page(section.html()).videos]
    assert len(sources) == 2
    for clip, source in zip(section.clips, sources, strict=True):
        assert base64.b64decode(source.removeprefix("data:video/mp4;base64,")) == clip.mp4
        assert len(clip.mp4) < 300_000
        path = tmp_path / f"{clip.name}.mp4"
        path.write_bytes(clip.mp4)
        found = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=codec_name,pix_fmt,width,height,nb_read_frames", "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        stream = json.loads(found.stdout)["streams"][0]
        expected = {"codec_name": "h264", "width": 160, "height": 128, "pix_fmt": "yuv420p", "nb_read_frames": "30"}
        assert stream == expected


def test_large_clips_are_written_but_not_embedded(archive_inputs, archive_config, page):
    config = dataclasses.replace(archive_config, embed_max_bytes=100, n_worst=1)
    section = archive_section(_qc(archive_inputs, config), video_paths=archive_inputs.video_paths)
    assert len(section.clips) == 1
    assert not page(section.html()).videos
    assert "archive-clip--mouse-001.mp4" in section.html() and "not embedded" in section.html()


def test_a_missing_video_file_shows_no_frames_and_says_why(archive_inputs, archive_config, page, tmp_path):
    config = dataclasses.replace(archive_config, n_worst=1)
    section = archive_section(_qc(archive_inputs, config), video_paths={"mouse-001": tmp_path / "gone.mp4"})
    assert [f.name for f in section.figures][-1] == "archive-trajectories--mouse-001"
    assert not section.clips
    assert f"Frames not shown: {tmp_path / 'gone.mp4'}: video file not found" in page(section.html()).plain


def test_hundreds_of_videos_get_one_row_each_and_figures_for_the_shown_few(tmp_path, page):
    rng = np.random.default_rng(0)
    names = [f"Cage {i:03d}" for i in range(300)]
    for n, name in enumerate(names):
        folder = tmp_path / f"video={name}"
        folder.mkdir()
        score = np.where(rng.random(30 * 2) < n / 600, 0.1, 0.9).astype(np.float32)  # later videos: more low
        table = pa.table(
            {
                "frame": np.repeat(np.arange(30), 2),
                "time_s": np.repeat(np.arange(30) / 30.0, 2),
                "instance": pa.array(np.zeros(60), pa.int16()),
                "keypoint": ["a", "b"] * 30,
                "x": rng.uniform(0, 100, 60).astype(np.float32),
                "y": rng.uniform(0, 100, 60).astype(np.float32),
                "score": score,
            }
        )
        pq.write_table(table, folder / "part-0.parquet")
    qc = archive_qc(tmp_path, config=ArchiveConfig(n_worst=1, n_samples=1))
    assert qc.keypoints == ("a", "b")
    flagged = [v.flagged_fraction for v in qc.videos]
    assert flagged == sorted(flagged, reverse=True)
    section = archive_section(qc)
    assert len(page(section.html()).rows("archive")) == 300
    assert [f.name for f in section.figures if "trajectories" in f.name] == [
        f"archive-trajectories--{slug(qc.videos[0].name)}",
        f"archive-trajectories--{slug(qc.videos[150].name)}",
    ]


def test_gaps_and_windows_on_small_arrays():
    low = np.zeros((10, 1, 2), dtype=bool)  # (F, I, K)
    low[0:3, 0, 0] = low[5, 0, 0] = low[7:10, 0, 1] = True
    assert sorted(gap_lengths(low).tolist()) == [1, 3, 3]
    assert gap_lengths(np.zeros((0, 1, 2), dtype=bool)).size == 0
    assert worst_window(np.array([0, 2, 0, 3, 3, 0]), 2) == (3, 5)
    assert worst_window(np.array([1, 1, 1]), 10) == (0, 3)
    assert worst_window(np.zeros(0), 30) == (0, 0)


def test_a_point_is_drawn_on_its_pixel():
    image = np.zeros((30, 40, 3), dtype=np.uint8)  # (H, W, 3)
    xy = np.array([[[10.0, 7.0], [np.nan, np.nan]]])  # (I, K, 2): one point, one missing
    low = np.zeros((1, 2), dtype=bool)
    drawn = draw_points(image, xy, low, [(255, 0, 0), (0, 255, 0)], (80, 60), "")  # enlarged twice
    red = (drawn[..., 0] > 128) & (drawn[..., 1] < 64)
    rows, columns = np.nonzero(red)
    # pixel-centre convention: pixel x=10 covers [20, 22) in the enlarged image, centre 20.5
    assert columns.mean() == pytest.approx(20.5, abs=0.5)
    assert rows.mean() == pytest.approx(14.5, abs=0.5)
    assert not ((drawn[..., 1] > 128) & (drawn[..., 0] < 64)).any(), "the missing point is not drawn"


def test_names_become_distinct_figure_names():
    assert slug("mouse-000") == "mouse-000"
    assert slug("Cage 1") != slug("cage_1")
    assert slug("Cage 1").startswith("cage_1-")


def test_config_errors_name_the_key():
    with pytest.raises(InputError, match=r"config\.yaml \(key qc\.jump_px\): unknown key"):
        ArchiveConfig.from_dict({"jump_px": 3}, "config.yaml")
    with pytest.raises(InputError, match=r"qc\.jump_fraction must be in \(0, 1\], got 2"):
        ArchiveConfig.from_dict({"jump_fraction": 2}, "config.yaml")
    with pytest.raises(InputError, match=r"qc\.n_worst must be an integer, got 2\.5"):
        ArchiveConfig.from_dict({"n_worst": 2.5}, "config.yaml")
