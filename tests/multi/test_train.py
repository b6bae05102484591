from pathlib import Path

import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.multi.evaluate import evaluate_topdown
from posecore.multi.predict import TopDownPredictor, load_topdown
from posecore.multi.topdown import TopDownConfig
from posecore.multi.train import train_topdown
from posecore.train.config import ModelConfig, TrainConfig

MODEL = ModelConfig(architecture="leap", hyperparameters={"filters": 4, "n_downsampling": 1})
TRAIN = TrainConfig(max_epochs=1, batch_size=2, accelerator="cpu", precision="32-true")


def _herd() -> TrainingDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8)
    keypoints = np.full((6, 2, 2, 2), np.nan, np.float32)
    keypoints[:, 0] = [[10, 12], [20, 18]]
    keypoints[::2, 1] = [[40, 44], [52, 50]]
    tracks = np.where(np.isfinite(keypoints[..., 0]).any(-1), np.array(["a", "b"], object), "")
    split = np.array(["train", "train", "train", "val", "val", "test"], object)
    return TrainingDataset(images, keypoints, split, ("nose", "tail"), tracks=tracks)


def test_both_models_train_into_one_file_that_predicts_and_evaluates(tmp_path: Path) -> None:
    config = TopDownConfig(max_animals=3, centroid_scale=0.5, crop_size=32)
    result = train_topdown(_herd(), config, MODEL, TRAIN, tmp_path)
    assert result.model_path == tmp_path / "model.pt" and result.crop_size == 32
    assert (tmp_path / "centroid" / "metrics.csv").is_file() and (tmp_path / "instance" / "metrics.csv").is_file()
    model = load_topdown(result.model_path)
    assert model.centroid.meta.keypoint_names == ("centroid",) and model.instance.meta.keypoint_names == (
        "nose",
        "tail",
    )
    assert model.centroid.meta.input_size == (32, 32) and model.instance.meta.input_size == (32, 32)
    detections = TopDownPredictor(model).predict(_herd().images[:2])
    assert detections.peaks.shape == (2, 3, 2, 3) and detections.valid.shape == (2, 3)
    evaluation = evaluate_topdown(model, _herd(), "test")
    assert evaluation.counts["labeled"].tolist() == [1] and evaluation.summary()["n_frames"] == 1


def test_a_single_animal_dataset_or_too_many_animals_are_refused(tmp_path: Path) -> None:
    herd = _herd()
    with pytest.raises(InputError, match=r"more than animals\.max_animals"):
        train_topdown(herd, TopDownConfig(max_animals=1), MODEL, TRAIN, tmp_path)
    single = TrainingDataset(herd.images, herd.keypoints[:, 0], herd.split, herd.keypoint_names)
    with pytest.raises(InputError, match="single-animal dataset"):
        train_topdown(single, TopDownConfig(max_animals=2), MODEL, TRAIN, tmp_path)
    with pytest.raises(InputError, match="anchor 'paw'"):
        train_topdown(herd, TopDownConfig(max_animals=2, anchor="paw"), MODEL, TRAIN, tmp_path)
