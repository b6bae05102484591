import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.io.frames import extract_frames, pick_frames
from posecore.io.video import probe, read_frames


@pytest.mark.parametrize(("n_video", "n"), [(100, 10), (7, 20), (1000, 1), (50, 50)])
def test_uniform_frames_are_distinct_sorted_and_spread(n_video, n):
    frames = pick_frames(n_video, n)
    assert len(frames) == min(n, n_video)
    assert np.all(np.diff(frames) > 0)
    assert frames[0] >= 0 and frames[-1] < n_video
    if len(frames) > 1:
        gaps = np.diff(frames)
        assert gaps.max() - gaps.min() <= 1, "uniform sampling leaves even gaps"


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="kmeans"):
        pick_frames(10, 2, "kmeans")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_extracted_pngs_are_the_decoded_frames(small_video, tmp_path):
    info = probe(small_video)
    listing = extract_frames(small_video, tmp_path / "images", tmp_path / "frames.tsv", n_frames=5, info=info)
    table = pd.read_csv(tmp_path / "frames.tsv", sep="\t")
    assert list(table["frame"]) == list(listing["frame"]) == list(pick_frames(info.n_frames, 5))
    decoded = {}
    for batch in read_frames(small_video, 0, info.n_frames, info=info, batch_size=16):
        decoded.update(zip(batch.indices.tolist(), batch.images, strict=True))
    for frame, image in zip(table["frame"], table["image"], strict=True):
        png = np.asarray(Image.open(tmp_path / "images" / image))
        np.testing.assert_array_equal(png, decoded[frame])
        assert image == f"img{frame:05d}.png"
    assert table["time_s"].iloc[1] == pytest.approx(table["frame"].iloc[1] / 25)
    assert not list(tmp_path.glob(".*")), "no temporary folder or file is left behind"
