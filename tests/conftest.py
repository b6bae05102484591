"""Fixtures shared across the test suite, and the rule that a skip in CI is a failure.

Under CI=true (`.ci/run`), a test that skips fails the run unless its skip is on
`ALLOWED_SKIPS`: a missing ../shared/data, SLURM or Chromium that could not be installed, or
an old Triton would otherwise leave a green run with fewer tests. Outside CI the run ends with
the skips grouped by reason. Tests marked `gpu` skip without a CUDA device (and may).
"""

import hashlib
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from posecore.io.video import ffmpeg_executable
from posecore.models.export import LoadedModel, ModelMeta
from posecore.models.registry import build_model
from posecore.multi.predict import save_topdown
from posecore.multi.topdown import TopDownConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POSECORE_TEST_DATA") or REPO.parent / "shared" / "data")
"""The real labeled datasets (../shared/data beside the repository; POSECORE_TEST_DATA elsewhere)."""

NO_GPU = "needs a CUDA device: benchmarks/gpu_session.sh runs it on a GPU machine"
ALLOWED_SKIPS = (
    # (marker the test must carry or None, pattern its skip reason must match, why CI may skip it)
    ("gpu", re.escape(NO_GPU), "CI machines have no GPU; benchmarks/gpu_session.sh runs these first on one"),
    (None, "^movement needs Python 3.11", "movement itself needs Python 3.11; posecore supports 3.10"),
)
"""The skips a CI run accepts, by marker and reason (so that tests written later are covered).
Anything else that skips under CI=true fails the run: a test marked gpu that skips on a GPU
machine for another reason (no Triton, say) too."""

_SKIPS: list[tuple[str, str, str | None]] = []  # (test, reason, why CI accepts it or None), this session's


def in_ci() -> bool:
    """Whether this run is CI's (CI=true, as `.ci/run` and CI services set it)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def allowed_skip(markers: set[str], reason: str) -> str | None:
    """Why a skip of a test with `markers` for `reason` is accepted in CI, or None when it is not."""
    for marker, pattern, why in ALLOWED_SKIPS:
        if (marker is None or marker in markers) and re.search(pattern, reason):
            return why
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not torch.cuda.is_available():
        pytest.skip(NO_GPU)


def _record_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        markers = set(getattr(report, "keywords", {}))
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        _SKIPS.append((report.nodeid, reason, allowed_skip(markers, reason)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record_skip(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, a skip that is not allowed fails a run that would otherwise pass."""
    refused = [skip for skip in _SKIPS if skip[2] is None]
    if in_ci() and refused and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The skips by reason, and under CI the ones that fail the run, saying what is missing."""
    skips = _SKIPS
    if not skips:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"{len(skips)} skipped, by reason")
    for (reason, why), count in Counter((reason, why) for _, reason, why in skips).most_common():
        write(f"{count:4d}  {reason}" + (f"  [allowed in CI: {why}]" if why else ""))
    refused = [(node, reason) for node, reason, why in skips if why is None]
    if in_ci() and refused:
        terminalreporter.section(f"CI=true: {len(refused)} tests skipped that must run", sep="!", red=True)
        for node, reason in refused:
            write(f"{node}: {reason}", red=True)
        write("Install what is missing, or add the skip to ALLOWED_SKIPS in tests/conftest.py saying why.", bold=True)


@pytest.fixture
def peak_finder_calls(monkeypatch) -> list[tuple[str, str]]:
    """Each call of a peak finder from here on, as (implementation, device of its maps): which one ran.

    "triton" is `posecore.ops.peaks_triton.find_peaks_triton` (the kernel), "reference" is
    `posecore.ops.peaks.find_peaks_reference`; both still compute their answer.
    """
    import posecore.ops.peaks as peaks
    import posecore.ops.peaks_triton as kernel

    calls = []

    def spy(name: str, finder: Callable) -> Callable:
        def run(maps, *args, **kwargs):
            calls.append((name, maps.device.type))
            return finder(maps, *args, **kwargs)

        return run

    monkeypatch.setattr(peaks, "find_peaks_reference", spy("reference", peaks.find_peaks_reference))
    monkeypatch.setattr(kernel, "find_peaks_triton", spy("triton", kernel.find_peaks_triton))
    return calls


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread: on a shared 2-core machine its thread pool oversubscribes and runs far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _encode_h264(
    frames: np.ndarray,
    path: Path,
    *,
    fps: int = 25,
    pix_fmt: str = "yuv444p",
    gop: int | None = None,
    crf: int | None = None,
) -> Path:
    """Encode uint8 (N, H, W, 3) RGB frames into an H.264 file at `path` with the real ffmpeg."""
    _, height, width, _ = frames.shape
    command = [ffmpeg_executable(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    command += ["-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-pix_fmt", pix_fmt]
    command += ["-g", str(gop)] if gop is not None else []
    command += ["-crf", str(crf)] if crf is not None else []
    subprocess.run([*command, str(path)], input=np.ascontiguousarray(frames).tobytes(), check=True)
    return path


@pytest.fixture(scope="session")
def encode_h264() -> Callable[..., Path]:
    """A function encoding uint8 (N, H, W, 3) frames as H.264: (frames, path, *, fps, pix_fmt, gop, crf) -> path."""
    return _encode_h264


def _point_track(n_frames: int, names: tuple[str, ...]) -> np.ndarray:
    """float32 (F, K, 3): keypoint k at x = 6 + 1.5 * frame, y = 8 + 12 * k, score 1 - 0.3 * k."""
    frames = np.arange(n_frames)
    peaks = np.zeros((n_frames, len(names), 3), dtype=np.float32)
    peaks[..., 0] = 6 + 1.5 * frames[:, None]
    peaks[..., 1] = 8 + 12 * np.arange(len(names))[None, :]
    peaks[..., 2] = 1 - 0.3 * np.arange(len(names))[None, :]
    return peaks


@pytest.fixture
def grey_video_with_track(tmp_path, encode_h264) -> Callable[..., tuple[Path, Path, np.ndarray]]:
    """make(n_frames=30, size=(64, 48), fps=25, track_frames=None, track_fps=None) -> (video, trajectories, peaks).

    The video is flat grey (128); the trajectories (written as posecore writes them, with
    provenance) move keypoints "a", "b", "c" along rows 8, 20, 32, one by 1.5 px per frame
    (`_point_track`), with scores 1, 0.7, 0.4; `track_frames` and `track_fps` make them
    another video's.
    """
    from posecore.io.trajectories import Provenance, keypoint_table, write_atomic

    def make(n_frames=30, size=(64, 48), fps=25, track_frames=None, track_fps=None):
        width, height = size
        (tmp_path / "grey.mp4").unlink(missing_ok=True)  # made again by a second call
        video = encode_h264(np.full((n_frames, height, width, 3), 128, dtype=np.uint8), tmp_path / "grey.mp4", fps=fps)
        n_track = track_frames or n_frames
        peaks = _point_track(n_track, ("a", "b", "c"))
        table = keypoint_table(np.arange(n_track), np.arange(n_track) / (track_fps or fps), peaks, ("a", "b", "c"))
        trajectories = tmp_path / "grey.parquet"
        write_atomic(table, trajectories, Provenance.for_video("ab" * 32, {}, video))
        return video, trajectories, peaks

    return make


@pytest.fixture
def published_resnet18(tmp_path, monkeypatch) -> tuple[Path, dict[str, torch.Tensor]]:
    """Seeded ResNet-18 weights 'published' at a file:// address, named with their hash, as torchvision's are.

    posecore.models.pretrained fetches them for `pretrained: imagenet` at depth 18, into a torch
    hub cache under tmp_path (TORCH_HOME). No network is used. Returns the published file and the
    weights (torchvision's names, with a classifier).
    """
    from posecore.models import pretrained
    from posecore.models.resnet import ResNetBackbone

    torch.manual_seed(1)
    state = ResNetBackbone(18, 3, dilate_last=True).state_dict()
    state |= {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    (tmp_path / "server").mkdir()
    staging = tmp_path / "server" / "staging.pth"
    torch.save(state, staging)
    source = staging.rename(staging.with_name(f"resnet18-{hashlib.sha256(staging.read_bytes()).hexdigest()[:8]}.pth"))
    monkeypatch.setattr(pretrained, "BASE_URL", source.parent.as_uri() + "/")
    monkeypatch.setitem(pretrained.IMAGENET_FILES, 18, source.name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return source, state


def _readout_model(names: tuple[str, ...], size: tuple[int, int]) -> LoadedModel:
    """A registered model (`colour_readout`) whose map k is colour channel k: a white blob is every map's peak."""
    model = build_model("colour_readout", len(names), 3).eval()
    with torch.no_grad():
        model.readout.weight.copy_(torch.eye(len(names), 3)[..., None, None])  # (K, C, 1, 1)
        model.readout.bias.zero_()
    meta = ModelMeta("colour_readout", {}, names, size, 3, (0.0,) * 3, (255.0,) * 3, 4, skeleton=((0, 1),))
    return LoadedModel(model, meta, sha256="")


def _save_readout_topdown(path: Path, names: tuple[str, ...] = ("nose", "tail"), max_animals: int = 2) -> Path:
    """A top-down model file of read-out models: each white blob of a frame is an animal with every keypoint on it."""
    config = TopDownConfig(max_animals=max_animals, centroid_scale=1.0)
    save_topdown(path, _readout_model(("centroid",), (64, 64)), _readout_model(names, (32, 32)), config, 32)
    return path


def _two_blobs(n_frames: int = 40, height: int = 64, width: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (F, H, W, 3) frames of two white 8x8 squares passing each other (one above, one below), and
    their centres float (F, 2, 2) (x, y)."""
    frames = np.zeros((n_frames, height, width, 3), dtype=np.uint8)
    centres = np.zeros((n_frames, 2, 2))
    for f in range(n_frames):
        step = (width - 24) * f / max(n_frames - 1, 1)
        for a, (x, y) in enumerate(((12 + step, 16.0), (width - 12 - step, height - 16.0))):
            left, top = round(x - 4), round(y - 4)
            frames[f, top : top + 8, left : left + 8] = 255
            centres[f, a] = (left + 3.5, top + 3.5)
    return frames, centres


@pytest.fixture(scope="session")
def two_blobs_video(tmp_path_factory) -> tuple[Path, np.ndarray, Path]:
    """A video of two white squares passing each other (40 frames, 96x64), their centres (F, 2, 2) (x, y),
    and a top-down model file (keypoints nose, tail; max_animals 2) that finds each square as an animal
    with both keypoints on it: the path of several animals per frame without training a model."""
    frames, centres = _two_blobs()
    folder = tmp_path_factory.mktemp("two-blobs")
    video = _encode_h264(frames, folder / "blobs.mp4", gop=10)
    return video, centres, _save_readout_topdown(folder / "topdown.pt", ("nose", "tail"))
