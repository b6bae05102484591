import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.io.frames import (
    KMeansConfig,
    candidate_frames,
    extract_frames,
    frame_thumbnails,
    image_name,
    pick_frames,
)
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
    with pytest.raises(ValueError, match=r"'bogus'.*uniform, kmeans"):
        pick_frames(10, 2, "bogus")  # type: ignore[arg-type]


def test_kmeans_needs_the_video():
    with pytest.raises(ValueError, match="needs the video"):
        pick_frames(10, 2, "kmeans")


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


# A video whose frames fall into three groups that look nothing alike: a dark arena with a small
# square moving over it (most frames), a short run of bright frames and a short run of checkerboard
# frames, placed where uniform sampling does not land.
GROUPS_N, GROUPS_H, GROUPS_W = 120, 48, 64
BRIGHT, CHECKER = range(30, 36), range(80, 86)


def _group_of(frame: int) -> str:
    return "bright" if frame in BRIGHT else "checker" if frame in CHECKER else "dark"


@pytest.fixture(scope="module")
def grouped_video(tmp_path_factory, encode_h264):
    rng = np.random.default_rng(0)
    frames = np.empty((GROUPS_N, GROUPS_H, GROUPS_W, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:GROUPS_H, :GROUPS_W]
    for i in range(GROUPS_N):
        if _group_of(i) == "bright":
            image = np.full((GROUPS_H, GROUPS_W), 220.0)
        elif _group_of(i) == "checker":
            image = np.where((yy // 8 + xx // 8) % 2 == 0, 30.0, 230.0)
        else:
            image = np.full((GROUPS_H, GROUPS_W), 40.0)
            x0, y0 = (3 * i) % (GROUPS_W - 8), (2 * i) % (GROUPS_H - 8)
            image[y0 : y0 + 8, x0 : x0 + 8] = 200.0
        image += rng.normal(0, 4, image.shape)
        frames[i] = np.clip(image, 0, 255).astype(np.uint8)[..., None]
    path = tmp_path_factory.mktemp("groups") / "groups.mp4"
    return encode_h264(frames, path, pix_fmt="yuv420p", gop=24, crf=18)


def test_kmeans_picks_every_group_where_uniform_misses_some(grouped_video):
    info = probe(grouped_video)
    uniform = pick_frames(info.n_frames, 4, "uniform")
    kmeans = pick_frames(info.n_frames, 4, "kmeans", video=grouped_video, info=info)
    assert {_group_of(int(f)) for f in uniform} == {"dark"}, "the rare groups must lie between uniform picks"
    assert len(kmeans) == 4 and np.all(np.diff(kmeans) > 0)
    assert {_group_of(int(f)) for f in kmeans} == {"dark", "bright", "checker"}


def test_kmeans_with_pca_and_few_candidates_still_finds_the_groups(grouped_video):
    config = KMeansConfig(seed=3, max_candidates=40, downsample_width=16, pca_components=5)
    frames = pick_frames(GROUPS_N, 3, "kmeans", video=grouped_video, kmeans=config)
    assert set(frames) <= set(candidate_frames(GROUPS_N, 40))
    assert {_group_of(int(f)) for f in frames} == {"dark", "bright", "checker"}


def test_kmeans_is_deterministic_for_a_seed(grouped_video):
    first = pick_frames(GROUPS_N, 6, "kmeans", video=grouped_video, kmeans=KMeansConfig(seed=7))
    again = pick_frames(GROUPS_N, 6, "kmeans", video=grouped_video, kmeans=KMeansConfig(seed=7))
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize(("n_video", "cap"), [(1_000_000, 500), (2330, 2000), (100, 2000), (7, 3)])
def test_candidates_are_capped_and_evenly_spaced(n_video, cap):
    candidates = candidate_frames(n_video, cap)
    assert 0 < len(candidates) <= cap
    assert candidates[0] == 0 and candidates[-1] < n_video
    assert len(set(np.diff(candidates).tolist())) <= 1
    if n_video <= cap:
        assert len(candidates) == n_video


def test_thumbnails_are_the_sampled_frames_shrunk(grouped_video):
    info = probe(grouped_video)
    candidates = candidate_frames(info.n_frames, 20)  # every 6th frame
    thumbs = frame_thumbnails(grouped_video, candidates, 16, info=info)
    assert thumbs.shape == (20, 12, 16) and thumbs.dtype == np.uint8
    decoded = {}
    for batch in read_frames(grouped_video, 0, info.n_frames, info=info, batch_size=40):
        decoded.update(zip(batch.indices.tolist(), batch.images, strict=True))
    for frame, thumb in zip(candidates.tolist(), thumbs, strict=True):
        grey = decoded[frame].astype(np.float64).mean(axis=2).reshape(12, 4, 16, 4).mean(axis=(1, 3))
        assert np.abs(thumb - grey).mean() < 6, f"thumbnail of frame {frame} is not that frame"


def test_kmeans_extraction_writes_the_picked_frames(grouped_video, tmp_path):
    listing = extract_frames(grouped_video, tmp_path / "images", tmp_path / "frames.tsv", n_frames=4, method="kmeans")
    table = pd.read_csv(tmp_path / "frames.tsv", sep="\t")
    assert list(table.columns) == ["frame", "time_s", "image", "video"]
    assert list(table["frame"]) == list(listing["frame"])
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [image_name(f) for f in table["frame"]]


def test_image_names_keep_one_width_per_video():
    assert image_name(42) == "img00042.png"
    assert image_name(42, 2330) == "img00042.png"
    assert image_name(42, 250_000) == "img000042.png"
