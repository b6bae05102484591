import numpy as np
import pandas as pd
import pytest
import torch

from posecore.models import load_model
from posecore.predict import Predictor
from posecore.train import ModelConfig, TrainConfig, train_model

SMALL = ModelConfig(hyperparameters={"growth_rate": 8, "n_transitions": 2})


def _constant_guess_rmse(dataset) -> float:
    """RMSE on val of always answering the mean training position of each keypoint."""
    guess = np.nanmean(dataset.keypoints[dataset.indices("train")], axis=0)  # (K, 2)
    errors = np.linalg.norm(dataset.keypoints[dataset.indices("val")] - guess, axis=-1)
    return float(np.sqrt(np.nanmean(errors**2)))


@pytest.mark.slow
def test_training_learns_far_better_than_a_constant_guess(disc_dataset, tmp_path):
    config = TrainConfig(max_epochs=10, batch_size=8, learning_rate=3e-3, sigma_px=3.0, accelerator="cpu")
    result = train_model(disc_dataset, SMALL, config, tmp_path)
    baseline = _constant_guess_rmse(disc_dataset)  # about 19 px
    assert result.best_val_rmse_px < baseline / 5

    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(10))
    assert {"train/loss", "val/loss", "val/rmse_px"} <= set(metrics.columns)
    assert np.isclose(metrics["val/rmse_px"].min(), result.best_val_rmse_px)
    assert metrics["train/loss"].iloc[-1] < metrics["train/loss"].iloc[0] / 5

    # The exported model, through the predictor, reproduces the validation RMSE.
    loaded = load_model(result.model_path)
    assert loaded.meta.keypoint_names == ("red", "blue") and loaded.meta.input_size == (64, 64)
    assert loaded.meta.dataset_hash == disc_dataset.content_hash()
    val = disc_dataset.indices("val")
    predicted = Predictor(loaded).predict(disc_dataset.images[val])
    errors = np.linalg.norm(predicted[..., :2] - disc_dataset.keypoints[val], axis=-1)
    assert np.isclose(np.sqrt(np.nanmean(errors**2)), result.best_val_rmse_px, rtol=1e-3)


def test_training_is_reproducible_with_a_seed(disc_dataset, tmp_path):
    config = TrainConfig(max_epochs=1, batch_size=8, accelerator="cpu", flip=True, translation_px=4, rotation_deg=10)
    first = train_model(disc_dataset, SMALL, config, tmp_path / "a")
    second = train_model(disc_dataset, SMALL, config, tmp_path / "b")
    assert first.best_val_rmse_px == second.best_val_rmse_px
    a, b = load_model(first.model_path).model.state_dict(), load_model(second.model_path).model.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_dataset_without_validation_frames_is_refused(disc_dataset, tmp_path):
    no_val = type(disc_dataset)(
        disc_dataset.images,
        disc_dataset.keypoints,
        np.full(len(disc_dataset.images), "train", dtype=object),
        disc_dataset.keypoint_names,
    )
    with pytest.raises(ValueError, match="no 'val' frames"):
        train_model(no_val, SMALL, TrainConfig(max_epochs=1, accelerator="cpu"), tmp_path)
