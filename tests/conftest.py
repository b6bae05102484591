"""Fixtures shared across the test suite."""

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from posecore.io.video import ffmpeg_executable


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
