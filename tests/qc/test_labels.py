from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.io.dataset import TrainingDataset
from posecore.qc.labels import label_qc, label_section

from ..conftest import SHARED_DATA

NAMES = ("snout", "leftear", "rightear", "neck", "tailbase")
SHAPE = np.array([[22.0, 0.0], [8.0, -9.0], [8.0, 9.0], [0.0, 0.0], [-24.0, 0.0]])  # (K, 2) body frame
H, W = 96, 128
SWAP, HALF_SWAP = 10, 14  # a full left/right swap; leftear put on rightear's place, rightear unlabeled
EXACT, NEAR = (5, 17), (8, 20)  # duplicate images: the second labels agree, the third's snout is 6 px off
OUTSIDE = (3, 4, (-4.0, 50.0))  # frame, keypoint (tailbase), its original (x, y)
SPLITS = ["train"] * 8 + ["val"] * 2 + ["test"] * 2 + ["train"] * 6 + ["train"] * 4 + ["val"] * 2
VIDEOS = ["vidA"] * 12 + ["vidB"] * 6 + ["vidC"] * 6  # vidB: all train; test: vidA only


def _planted() -> TrainingDataset:
    """24 frames of an animal turning and moving, with exactly the problems named above."""
    rng = np.random.default_rng(3)
    n = len(SPLITS)
    angles = rng.uniform(0, 2 * np.pi, n)  # (N,)
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)], -1).reshape(n, 2, 2)
    centres = np.stack([rng.uniform(30, 70, n), rng.uniform(30, 50, n)], -1)  # (N, 2) (x, y)
    keypoints = np.einsum("nij,kj->nki", rotations, SHAPE) + centres[:, None] + rng.normal(0, 0.7, (n, 5, 2))
    keypoints[0:4, 3] = np.nan  # neck unlabeled in frames 0-3 (all train)
    keypoints[SWAP, [1, 2]] = keypoints[SWAP, [2, 1]]
    keypoints[HALF_SWAP, 1], keypoints[HALF_SWAP, 2] = keypoints[HALF_SWAP, 2], np.nan
    images = rng.integers(0, 256, (n, H, W, 3), dtype=np.uint8)
    images[0:4, 80:, :] = 0  # frames 0-3 are 100x80 (WxH), padded at the bottom and right
    images[0:4, :, 100:] = 0
    images[EXACT[1]], keypoints[EXACT[1]] = images[EXACT[0]], keypoints[EXACT[0]]
    jitter = rng.integers(-1, 2, (H, W, 3))
    images[NEAR[1]] = np.clip(images[NEAR[0]].astype(int) + jitter, 0, 255).astype(np.uint8)
    keypoints[NEAR[1]] = keypoints[NEAR[0]]
    keypoints[NEAR[1], 0, 0] += 6.0
    outside = np.full((n, 5, 2), np.nan, dtype=np.float32)
    frame, k, xy = OUTSIDE
    outside[frame, k], keypoints[frame, k] = xy, np.nan
    sizes = np.tile(np.array([H, W], dtype=np.int32), (n, 1))
    sizes[0:4] = (80, 100)
    return TrainingDataset(
        images=images,
        keypoints=keypoints.astype(np.float32),
        split=np.array(SPLITS, dtype=object),
        keypoint_names=NAMES,
        skeleton=((0, 3), (3, 4)),
        swap_pairs=((1, 2),),
        source_video=np.array(VIDEOS, dtype=object),
        source_frame=np.arange(n, dtype=np.int64) * 10,
        source_path=np.array([f"labeled-data/{v}/img{i * 10:04d}.png" for i, v in enumerate(VIDEOS)], dtype=object),
        image_sizes=sizes,
        outside_xy=outside,
    )


@pytest.fixture(scope="module")
def planted() -> TrainingDataset:
    """The fabricated dataset with its planted problems."""
    return _planted()


def test_finds_exactly_the_planted_swaps_worst_first(planted):
    qc = label_qc(planted)
    assert [(s.frame, s.left, s.right) for s in qc.swaps] == [
        (SWAP, "leftear", "rightear"),
        (HALF_SWAP, "leftear", "rightear"),
    ]
    full, half = qc.swaps
    assert full.source == f"vidA frame {SWAP * 10}"
    assert full.margin_px == pytest.approx(2 * 18.0, abs=4.0)  # both ears 18 px from their own places
    assert half.margin_px == pytest.approx(18.0, abs=3.0)


def test_finds_exactly_the_planted_duplicates_and_whether_labels_agree(planted):
    groups = label_qc(planted).duplicates
    assert [g.frames for g in groups] == [EXACT, NEAR]
    exact, near = groups
    assert exact.identical and exact.labels_agree
    assert not near.identical and not near.labels_agree
    assert near.max_label_diff_px == pytest.approx(6.0)
    assert near.sources == ("vidA frame 80", "vidC frame 200")


def test_counts_outside_labels_sizes_and_split_balance(planted):
    qc = label_qc(planted)
    labeled = np.isfinite(planted.keypoints).all(-1)  # (N, K)
    total, train, val, test = qc.counts
    assert (total.split, total.n_frames, train.n_frames, val.n_frames, test.n_frames) == ("all", 24, 18, 4, 2)
    assert total.labeled == tuple(labeled.sum(0))
    assert total.missing[NAMES.index("neck")] == 4 and train.missing[NAMES.index("neck")] == 4
    assert total.missing[NAMES.index("tailbase")] == 1  # the label outside the image
    assert total.missing[NAMES.index("rightear")] == 1  # the half swap
    assert [(o.frame, o.keypoint, o.x, o.y, o.source) for o in qc.outside] == [
        (3, "tailbase", -4.0, 50.0, "vidA frame 30")
    ]
    assert dict(qc.image_sizes) == {
        (80, 100): {"all": 4, "train": 4, "val": 0, "test": 0},
        (96, 128): {"all": 20, "train": 14, "val": 4, "test": 2},
    }
    assert qc.videos == {
        "vidA": {"train": 8, "val": 2, "test": 2},
        "vidB": {"train": 6, "val": 0, "test": 0},
        "vidC": {"train": 4, "val": 2, "test": 0},
    }
    assert qc.one_split_videos == ("vidB",)
    assert qc.one_video_splits == ("test",)


def test_section_shows_every_problem_in_its_table(planted, page):
    section = label_section(label_qc(planted), planted)
    tables = page(section.body)
    counts = {row[0]: row for row in tables.tables["label-counts"][1:]}
    assert counts["neck"][1:4] == ["20", "4", "16.7"]
    assert counts["all keypoints"][1:3] == [str(int(np.isfinite(planted.keypoints).all(-1).sum())), "6"]
    swaps = tables.tables["label-swaps"][1:]
    assert [(r[0], r[1], r[2]) for r in swaps] == [
        ("10", "vidA frame 100", "leftear / rightear"),
        ("14", "vidB frame 140", "leftear / rightear"),
    ]
    assert tables.tables["label-outside"][1:] == [["3", "vidA frame 30", "tailbase", "-4.0", "50.0"]]
    duplicates = tables.tables["label-duplicates"][1:]
    assert [(r[0], r[2], r[3]) for r in duplicates] == [
        ("5, 17", "identical", "agree"),
        ("8, 20", "near-identical", "differ (up to 6.0 px)"),
    ]
    assert tables.tables["label-sizes"][1:] == [["100×80", "4", "4", "0", "0"], ["128×96", "20", "14", "4", "2"]]
    assert [r[0] for r in tables.tables["label-videos"][1:] if r[-1] == "one split only"] == ["vidB"]
    bad = [text for css, text in tables.items if css == "bad"]
    assert any("'test'" in text for text in bad) and any("'vidB'" in text for text in bad)
    assert "1 suspected left/right swap" not in " ".join(bad) and "2 suspected left/right swaps" in " ".join(bad)


def test_position_figure_is_a_small_png(planted):
    (figure,) = label_section(label_qc(planted), planted).figures
    assert figure.name == "labels-positions"
    image = Image.open(io.BytesIO(figure.png))
    assert image.format == "PNG" and 200 < image.width < 1000
    assert len(figure.png) < 300_000


def test_clean_dataset_has_no_findings():
    rng = np.random.default_rng(0)
    n = 12
    keypoints = SHAPE[None] + rng.uniform(20, 60, (n, 1, 2)) + rng.normal(0, 0.5, (n, 5, 2))
    dataset = TrainingDataset(
        images=rng.integers(0, 256, (n, 64, 96, 1), dtype=np.uint8),
        keypoints=keypoints.astype(np.float32),
        split=np.array(["train"] * n, dtype=object),
        keypoint_names=NAMES,
        swap_pairs=((1, 2),),
    )
    for alignment in ("rigid", "translation"):
        qc = label_qc(dataset, alignment=alignment)
        assert qc.swaps == () and qc.duplicates == () and qc.outside == ()
        assert qc.one_split_videos == () and qc.one_video_splits == ("train",)
    with pytest.raises(ValueError, match="alignment"):
        label_qc(dataset, alignment="affine")


def test_missing_counts_of_lp_mirror_mouse_equal_the_csv(page):
    data = SHARED_DATA / "lp-mirror-mouse"
    if not data.is_dir():
        pytest.skip("../shared/data/lp-mirror-mouse is not here")
    from posecore.io.assemble import SplitConfig, assemble_dataset
    from posecore.io.labels import read_labels

    csv = data / "CollectedData.csv"
    names = read_labels(csv).keypoint_names
    dataset = assemble_dataset([csv], names, split=SplitConfig(val_fraction=0.1, test_fraction=0.1, seed=0))
    table = pd.read_csv(csv, header=[0, 1, 2], index_col=0)
    nan = table.xs("x", axis=1, level=2).isna().sum()  # indexed by (scorer, bodypart)
    nan.index = nan.index.get_level_values(1)
    qc = label_qc(dataset)
    outside = np.isfinite(dataset.outside_xy).all(-1).sum(0)  # (K,) labels set to NaN for lying outside
    assert list(qc.counts[0].missing) == [int(nan[name]) + int(o) for name, o in zip(names, outside, strict=True)]
    assert sum(qc.counts[0].missing) == 268 // 2
    assert sum(sum(c.missing) for c in qc.counts[1:]) == 134
    assert qc.duplicates == ()
    section = label_section(qc, dataset)
    counts = {row[0]: row for row in page(section.body).tables["label-counts"][1:]}
    assert counts["obs_top"][2] == str(int(nan["obs_top"]))


def test_the_one_ear_swap_in_dlc_openfield_is_found():
    data = SHARED_DATA / "dlc-openfield"
    if not data.is_dir():
        pytest.skip("../shared/data/dlc-openfield is not here")
    from posecore.io.assemble import assemble_dataset
    from posecore.io.labels import read_labels

    files = sorted(data.glob("labeled-data/*/CollectedData_*.csv"))
    names = read_labels(files[0]).keypoint_names
    dataset = assemble_dataset(files, names, swap_pairs=(("leftear", "rightear"),))
    # In img0102 the mouse faces left like in img0101, but its ear labels are the other way round.
    for alignment in ("rigid", "translation"):
        swaps = label_qc(dataset, alignment=alignment).swaps
        assert [(Path(dataset.source_path[s.frame]).name, s.left) for s in swaps] == [("img0102.png", "leftear")]
