import numpy as np
import pandas as pd
import pytest
import torch

from posecore.errors import InputError
from posecore.models import ModelMeta, build_model, load_model, save_model
from posecore.predict import Predictor
from posecore.train import ModelConfig, TrainConfig, train_model

SMALL = ModelConfig("densenet_lite", {"growth_rate": 8, "n_transitions": 2})


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
    config = TrainConfig(
        max_epochs=1, batch_size=8, accelerator="cpu", flip=True, translation_px=4, rotation_deg=10, noise_std=0.05
    )
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
    with pytest.raises(InputError, match=r"data.h5 \(key split\): no 'val' frames"):
        train_model(no_val, SMALL, TrainConfig(max_epochs=1, accelerator="cpu"), tmp_path, source="data.h5")
    assert not (tmp_path / "checkpoints").exists()  # refused before training started


def test_a_keypoint_never_labeled_in_training_is_named(disc_dataset, tmp_path):
    keypoints = disc_dataset.keypoints.copy()
    keypoints[disc_dataset.indices("train"), 1] = np.nan
    data = type(disc_dataset)(disc_dataset.images, keypoints, disc_dataset.split, disc_dataset.keypoint_names)
    with pytest.raises(InputError, match=r"data.h5 \(key keypoints\): keypoint\(s\) \['blue'\] have no label"):
        train_model(data, SMALL, TrainConfig(max_epochs=1, accelerator="cpu"), tmp_path, source="data.h5")


def test_posture_graph_without_a_skeleton_is_refused(disc_dataset, tmp_path):
    config = TrainConfig(max_epochs=1, accelerator="cpu", posture_graph=True)
    with pytest.raises(InputError, match="posture_graph needs skeleton edges"):
        train_model(disc_dataset, SMALL, config, tmp_path)


def test_a_starting_model_with_other_keypoints_is_refused(disc_dataset, tmp_path):
    model = build_model("densenet_lite", 3, 3, **SMALL.hyperparameters)
    meta = ModelMeta(
        "densenet_lite",
        {**SMALL.hyperparameters, "n_graph_maps": 0},
        ("a", "b", "c"),
        (64, 64),
        3,
        (0.0,) * 3,
        (1.0,) * 3,
        4,
    )
    save_model(tmp_path / "old.pt", model, meta)
    config = TrainConfig(max_epochs=1, accelerator="cpu", init_from=str(tmp_path / "old.pt"))
    with pytest.raises(InputError, match=r"keypoints \['red', 'blue'\] differ from those of train.init_from"):
        train_model(disc_dataset, SMALL, config, tmp_path / "new", source="data.h5")


def test_posture_graph_training_exports_keypoint_then_bone_maps(disc_dataset, tmp_path):
    data = type(disc_dataset)(
        disc_dataset.images[:24],
        disc_dataset.keypoints[:24],
        disc_dataset.split[:24].copy(),
        disc_dataset.keypoint_names,
        skeleton=((0, 1),),
    )
    data.split[16:] = "val"
    model = ModelConfig("stacked_hourglass", {"filters": 8, "n_transitions": 1, "n_stacks": 2})
    config = TrainConfig(max_epochs=1, accelerator="cpu", posture_graph=True, flip_vertical=True, scale=0.1)
    result = train_model(data, model, config, tmp_path)
    loaded = load_model(result.model_path)
    assert loaded.meta.hyperparameters["n_graph_maps"] == 1 and loaded.meta.skeleton == ((0, 1),)
    with torch.no_grad():
        assert [o.shape[1] for o in loaded.model(torch.zeros(1, 3, 64, 64))] == [3, 3]  # K = 2 keypoints + 1 bone


def test_training_on_crops_stops_at_its_time_limit_and_exports_the_best_model(disc_dataset, tmp_path):
    config = TrainConfig(max_epochs=1000, accelerator="cpu", crop_size=32, max_minutes=0.05)
    result = train_model(disc_dataset, SMALL, config, tmp_path)
    assert 1 <= result.epochs < 1000 and result.seconds < 60
    assert result.model_path.is_file() and np.isfinite(result.best_val_rmse_px)
    # Trained on 32-pixel crops, the model still predicts whole frames.
    images = disc_dataset.images[disc_dataset.indices("val")]
    assert Predictor(load_model(result.model_path)).predict(images).shape == (len(images), 2, 3)


def test_deepposekit_s_stacked_densenet_trains_every_output(disc_dataset, tmp_path):
    """The faithful network supervises its front end and its stacks (3 outputs) and exports like the others."""
    model = ModelConfig("stacked_densenet", {"n_stacks": 2, "growth_rate": 4, "n_transitions": 2})
    result = train_model(disc_dataset, model, TrainConfig(max_epochs=2, accelerator="cpu"), tmp_path)
    loaded = load_model(result.model_path)
    assert loaded.meta.architecture == "stacked_densenet" and np.isfinite(result.best_val_rmse_px)
    with torch.no_grad():
        assert len(loaded.model(torch.zeros(1, 3, 64, 64))) == 3


def test_a_model_trained_from_imagenet_weights_exports_them_and_loads_with_no_network(
    disc_dataset, tmp_path, published_resnet18
):
    source, state = published_resnet18
    model = ModelConfig("resnet_deconv", {"depth": 18, "pretrained": "imagenet"})
    result = train_model(disc_dataset, model, TrainConfig(max_epochs=1, accelerator="cpu"), tmp_path / "run")
    assert (tmp_path / "torch-home" / "hub" / "checkpoints" / source.name).is_file()  # fetched through the cache
    payload = torch.load(result.model_path, weights_only=True)
    assert payload["hyperparameters"]["pretrained"] == "" and payload["hyperparameters"]["weights_path"] == ""
    # Neither the network nor the cache is needed to load the model: its weights are in the file.
    source.unlink()
    (tmp_path / "torch-home" / "hub" / "checkpoints" / source.name).unlink()
    loaded = load_model(result.model_path)
    assert torch.equal(loaded.model.state_dict()["backbone.layer4.1.bn2.running_mean"],
                       payload["state_dict"]["backbone.layer4.1.bn2.running_mean"])  # fmt: skip
    trained, imagenet = loaded.model.backbone.conv1.weight, state["conv1.weight"]
    assert not torch.equal(trained, imagenet) and torch.allclose(trained, imagenet, atol=0.05)  # trained from them
