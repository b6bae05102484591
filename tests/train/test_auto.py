from pathlib import Path

import numpy as np
import pytest

from posecore.io.assemble import SplitConfig, assemble_dataset
from posecore.io.labels import read_labels
from posecore.train.auto import decide_crop, decide_flip, lateral_keypoints, resolve_auto
from posecore.train.config import TrainConfig

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _animals(n: int, length: float, headings_deg: np.ndarray, frame=(480, 640), seed: int = 0) -> np.ndarray:
    """(n, 3, 2) labels of a straight animal (head, middle, tail) of `length` px at the given headings."""
    rng = np.random.default_rng(seed)
    half = length / 2
    centre = rng.uniform([half, half], [frame[1] - half, frame[0] - half], size=(n, 2))  # (n, 2) x, y
    angle = np.radians(headings_deg)[:, None]  # (n, 1)
    axis = np.concatenate([np.cos(angle), np.sin(angle)], axis=1)  # (n, 2) head direction
    offsets = np.array([0.5, 0.0, -0.5])[None, :, None] * length * axis[:, None, :]  # (n, 3, 2)
    return (centre[:, None, :] + offsets).astype(np.float32)


def _sizes(n: int, height: int, width: int) -> np.ndarray:
    return np.tile([height, width], (n, 1))


def test_a_small_animal_in_large_frames_trains_on_crops_that_hold_it():
    keypoints = _animals(40, 100.0, np.linspace(-180, 180, 40))
    size, until, reason = decide_crop(keypoints, _sizes(40, 480, 640))
    assert (size, until) == (192, 1.0)  # 1.5 x 100 px, up to a multiple of 64
    assert "100 px" in reason and "640x480" in reason


def test_an_animal_that_fills_its_frame_trains_on_crops_then_whole_frames():
    keypoints = _animals(40, 380.0, np.zeros(40), frame=(400, 400))
    size, until, reason = decide_crop(keypoints, _sizes(40, 400, 400))
    assert (size, until) == (256, 0.6)  # the largest crop of at most half a frame, then whole frames
    assert "whole frames after it" in reason


def test_small_frames_train_whole():
    keypoints = _animals(40, 50.0, np.zeros(40), frame=(128, 160))
    assert decide_crop(keypoints, _sizes(40, 128, 160))[:2] == (0, 1.0)


def test_a_crop_size_set_in_the_config_decides_only_when_to_stop_cropping():
    keypoints = _animals(40, 300.0, np.zeros(40))
    assert decide_crop(keypoints, _sizes(40, 480, 640), crop_size=512)[:2] == (512, 1.0)
    assert decide_crop(keypoints, _sizes(40, 480, 640), crop_size=256)[:2] == (256, 0.6)
    assert decide_crop(keypoints, _sizes(40, 480, 640), crop_size=0)[:2] == (0, 1.0)


def test_lateral_keypoints_are_found_by_name():
    names = ["snout", "leftear", "Ear_R", "paw1LH", "tailBase_top", "L_hand", "bright_spot", "neck", "forelimbL"]
    assert [names[k] for k in lateral_keypoints(names)] == ["leftear", "Ear_R", "paw1LH", "L_hand", "forelimbL"]


def test_flips_for_an_animal_that_turns_freely():
    keypoints = _animals(60, 100.0, np.random.default_rng(1).uniform(-180, 180, 60))
    flip, reason = decide_flip(keypoints, ["head", "middle", "tail"], [])
    assert flip and "faces many ways" in reason


def test_no_flips_for_an_animal_that_always_faces_one_way():
    keypoints = _animals(60, 100.0, np.random.default_rng(1).uniform(-15, 15, 60))  # head always to the right
    flip, reason = decide_flip(keypoints, ["head", "middle", "tail"], [])
    assert not flip and "tail -> head points the same way in the 60 training frames" in reason


def test_a_pair_that_a_flip_leaves_as_it_was_does_not_stop_flips():
    # Always vertical (an animal seen from the side standing up, or two views one above the
    # other): a mirrored frame shows the same direction.
    keypoints = _animals(60, 100.0, np.random.default_rng(1).uniform(85, 95, 60))
    assert decide_flip(keypoints, ["head", "middle", "tail"], [])[0]


def test_left_right_pairs_facing_one_way_swap_back_under_a_flip():
    # Two ears side by side, left always left of right (a mouse seen from above, facing up): a
    # flip mirrors them and swaps their names, which keeps left on the left.
    rng = np.random.default_rng(2)
    centre = rng.uniform(100, 300, size=(50, 1, 2))
    keypoints = (centre + np.array([[-10.0, 0.0], [10.0, 0.0]]) + rng.normal(0, 2, (50, 2, 2))).astype(np.float32)
    assert decide_flip(keypoints, ["left_ear", "right_ear"], [(0, 1)])[0]
    flip, reason = decide_flip(keypoints, ["left_ear", "right_ear"], [])
    assert not flip and "['left_ear', 'right_ear'] are named as one side" in reason


def test_resolve_auto_decides_only_what_the_config_leaves_auto():
    keypoints = _animals(40, 100.0, np.random.default_rng(1).uniform(-180, 180, 40))
    sizes = _sizes(40, 480, 640)
    config, decisions = resolve_auto(TrainConfig(), keypoints, sizes, ["a", "b", "c"], [])
    assert (config.crop_size, config.crop_until, config.flip) == (192, 1.0, True)
    assert [d.key for d in decisions] == ["crop_size", "crop_until", "flip"]
    assert decisions[0].line().startswith("train.crop_size: 192 (auto): the animal spans up to 100 px")
    fixed = TrainConfig(crop_size=0, flip=False, max_epochs=10)
    config, decisions = resolve_auto(fixed, keypoints, sizes, ["a", "b", "c"], [])
    assert (config.crop_size, config.crop_until, config.flip, config.max_epochs) == (0, 1.0, False, 10)
    assert [d.key for d in decisions] == ["crop_until"]


@pytest.mark.parametrize(
    ("folder", "pattern", "swap_pairs", "expected"),
    [
        # The per-dataset recipes of benchmarks/accuracy.py, which reached 2.54 and 6.32 px.
        ("dlc-openfield", "labeled-data/*/CollectedData_*.csv", [("leftear", "rightear")], (256, 1.0, True)),
        (
            "lp-mirror-mouse",
            "CollectedData.csv",
            [(f"{a}_{v}", f"{b}_{v}") for v in ("top", "bot") for a, b in (("paw1LH", "paw4RH"), ("paw2LF", "paw3RF"))],
            (256, 0.6, False),
        ),
    ],
)
def test_auto_chooses_what_the_recipes_chose_by_hand_on_the_real_datasets(folder, pattern, swap_pairs, expected):
    files = sorted((DATA / folder).glob(pattern))
    if not files:
        pytest.skip(f"{DATA / folder} is not here")
    names = read_labels(files[0]).keypoint_names
    dataset = assemble_dataset(files, names, [], swap_pairs, SplitConfig(0.1, 0.1, 0))
    train = dataset.indices("train")
    config, _ = resolve_auto(
        TrainConfig(), dataset.keypoints[train], dataset.image_sizes[train], names, dataset.swap_pairs
    )
    assert (config.crop_size, config.crop_until, config.flip) == expected
