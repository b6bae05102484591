"""Videos for the video-reader tests: generated ones (small, fast) and the real ones in ../shared/data.

Reference frames come from a plain full sequential decode with ffmpeg (no seeking, no filters),
kept as one sha1 per frame, so tests compare the reader against ffmpeg itself.

Label files that point into a video: a SLEAP project written by sleap-io's own API.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from ..conftest import SHARED_DATA

DATA = SHARED_DATA
REAL_VIDEOS = {
    "m3v1mp4": DATA / "dlc-openfield" / "videos" / "m3v1mp4.mp4",
    "test_vid": DATA / "lp-mirror-mouse" / "videos" / "test_vid.mp4",
}
N_FRAMES = 96  # generated videos: 25 fps, GOP of 12, 3 B-frames
VFR_PTS_MS = [40 * n + 10 * (n % 3) for n in range(N_FRAMES)]  # frame gaps of 50, 50, 20 ms


def _encode(path: Path, pix_fmt: str, *, open_gop: bool = False, vfr: bool = False) -> Path:
    video = ffmpeg.input("testsrc2=size=128x96:rate=25", f="lavfi").filter("noise", alls=40, allf="t")
    if vfr:
        video = video.filter("settb", "1/1000").filter("setpts", "40*N+10*mod(N,3)")  # pts in ms
    x264 = "open-gop=1" if open_gop else "open-gop=0"
    out = video.output(
        str(path),
        vcodec="libx264",
        pix_fmt=pix_fmt,
        g=12,
        bf=3,
        sc_threshold=0,
        vframes=N_FRAMES,
        fps_mode="passthrough",
        video_track_timescale=1000 if vfr else 12800,
        enc_time_base="1/1000" if vfr else "1/25",
        **{"x264-params": x264},
    )
    out.overwrite_output().run(quiet=True)
    return path


def frame_hashes(path: Path) -> list[str]:
    """sha1 of every frame of a full sequential decode to RGB24, streamed (never all in memory)."""
    info = next(s for s in ffmpeg.probe(str(path))["streams"] if s["codec_type"] == "video")
    size = int(info["width"]) * int(info["height"]) * 3
    proc = (
        ffmpeg.input(str(path))
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
        .global_args("-nostdin", "-loglevel", "error")
        .run_async(pipe_stdout=True)
    )
    hashes = []
    while len(raw := proc.stdout.read(size)) == size:
        hashes.append(hashlib.sha1(raw).hexdigest())
    assert proc.wait() == 0
    return hashes


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of small generated videos and bad inputs."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    root = tmp_path_factory.mktemp("videos")
    videos = {
        "closed420": _encode(root / "closed420.mp4", "yuv420p"),
        "open444": _encode(root / "open444.mp4", "yuv444p", open_gop=True),
        "vfr": _encode(root / "vfr.mp4", "yuv420p", vfr=True),
    }
    # moov at the end (the default): half the file has no index at all
    data = videos["closed420"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    # moov at the start: the index promises frames that the cut file no longer holds
    faststart = root / "faststart.mp4"
    ffmpeg.input(str(videos["closed420"])).output(str(faststart), c="copy", movflags="+faststart").run(quiet=True)
    data = faststart.read_bytes()
    (root / "truncated_faststart.mp4").write_bytes(data[: len(data) // 2])
    (root / "notes.mp4").write_text("this is not a video\n" * 100)
    ffmpeg.input("sine=frequency=440:duration=1", f="lavfi").output(str(root / "tone.wav")).run(quiet=True)
    videos.update(
        faststart=faststart,
        truncated=root / "truncated.mp4",
        truncated_faststart=root / "truncated_faststart.mp4",
        not_video=root / "notes.mp4",
        audio_only=root / "tone.wav",
    )
    return videos


@pytest.fixture(scope="session")
def generated_hashes(generated: dict[str, Path]) -> dict[str, list[str]]:
    """name -> per-frame sha1 of the full sequential decode, for the good generated videos."""
    return {name: frame_hashes(generated[name]) for name in ("closed420", "open444", "vfr")}


@pytest.fixture(scope="session")
def n_generated_frames() -> int:
    """Frames in each generated video."""
    return N_FRAMES


@pytest.fixture(scope="session")
def vfr_pts_ms() -> list[int]:
    """The presentation times (ms) that the VFR video was encoded with."""
    return VFR_PTS_MS


@pytest.fixture(scope="session")
def real_videos() -> dict[str, Path]:
    """name -> path of the real videos in ../shared/data (skips when they are absent)."""
    if not all(p.is_file() for p in REAL_VIDEOS.values()):
        pytest.skip("../shared/data is not available")
    return REAL_VIDEOS


@pytest.fixture(scope="session")
def real_hashes(real_videos: dict[str, Path]) -> dict[str, list[str]]:
    """name -> per-frame sha1 of the full sequential decode of the real videos (computed once)."""
    return {name: frame_hashes(path) for name, path in real_videos.items()}


# Label files that point into a video (SLEAP) and the formats built on them.
LABEL_VIDEO_FRAMES = 30
SLEAP_NODES = ("head", "neck", "tail")
SLEAP_FRAMES = (3, 11, 12, 27)  # labeled frames of the label video, in file order


@pytest.fixture(scope="session")
def label_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x48 H.264 video of 30 frames (GOP of 10, B-frames), named m1.mp4."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    path = tmp_path_factory.mktemp("label_video") / "m1.mp4"
    source = ffmpeg.input("testsrc2=size=64x48:rate=25", f="lavfi").filter("noise", alls=30, allf="t")
    source.output(str(path), vcodec="libx264", pix_fmt="yuv420p", g=10, bf=2, vframes=LABEL_VIDEO_FRAMES).run(
        quiet=True
    )
    return path


@pytest.fixture(scope="session")
def sleap_points() -> np.ndarray:
    """float (len(SLEAP_FRAMES), 3, 2) (x, y) of the SLEAP fixture's user instances; NaN: not labeled.

    The tail of frame 3 has coordinates in the file but is marked not visible, so it reads as NaN.
    """
    return np.array(
        [
            [[5.25, 7.5], [20.0, 30.75], [np.nan, np.nan]],
            [[0.0, 0.0], [63.5, 47.5], [np.nan, np.nan]],  # the first pixel's centre, the last's outer corner
            [[10.1, 11.2], [12.3, 13.4], [14.5, 15.6]],
            [[33.0, 22.0], [np.nan, np.nan], [1.5, 2.5]],
        ]
    )


@pytest.fixture(scope="session")
def write_sleap(sleap_points: np.ndarray) -> Callable[..., Path]:
    """write(folder, video, embed=False, name="labels.slp") -> path of a SLEAP file made with sleap-io.

    One user instance on each of SLEAP_FRAMES (`sleap_points`); frame 11 also carries a predicted
    instance, and frame 20 only a predicted one (neither is a label). `embed` writes a package
    with the labeled frames' images inside (sleap-io's `embed="user"`).
    """
    sio = pytest.importorskip("sleap_io")

    def write(folder: Path, video: Path, *, embed: bool = False, name: str = "labels.slp") -> Path:
        skeleton = sio.Skeleton(list(SLEAP_NODES))
        sleap_video = sio.Video.from_filename(str(video))
        frames = []
        for frame, xy in zip(SLEAP_FRAMES, sleap_points, strict=True):
            if frame == 3:
                xy = xy.copy()
                xy[2] = (60.5, 40.0)  # written, then marked not visible below
            instances = [sio.Instance.from_numpy(xy, skeleton=skeleton)]
            if frame == 3:
                instances[0].points["visible"][2] = False
            if frame == 11:
                instances.append(sio.PredictedInstance.from_numpy(xy + 1.0, skeleton=skeleton, score=0.9))
            frames.append(sio.LabeledFrame(video=sleap_video, frame_idx=frame, instances=instances))
        predicted = sio.PredictedInstance.from_numpy(sleap_points[2], skeleton=skeleton, score=0.5)
        frames.append(sio.LabeledFrame(video=sleap_video, frame_idx=20, instances=[predicted]))
        labels = sio.Labels(labeled_frames=frames, skeletons=[skeleton], videos=[sleap_video])
        path = folder / name
        sio.save_slp(labels, str(path), embed="user" if embed else False, verbose=False)
        return path

    return write


@pytest.fixture
def sleap_project(tmp_path: Path, label_video: Path, write_sleap: Callable[..., Path]) -> Path:
    """A SLEAP file beside a copy of m1.mp4, which it names by its absolute path."""
    video = tmp_path / label_video.name
    shutil.copy(label_video, video)
    return write_sleap(tmp_path, video)
