import json

import numpy as np
import pytest

from posecore.cli import main
from posecore.io.dataset import TrainingDataset, write_dataset


@pytest.fixture
def dataset_path(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(12, 32, 32, 1), dtype=np.uint8)
    keypoints = rng.uniform(4, 28, size=(12, 2, 2)).astype(np.float32)
    keypoints[3, 1] = np.nan
    split = np.array(["train"] * 6 + ["val"] * 3 + ["test"] * 3, dtype=object)
    path = tmp_path / "data.h5"
    write_dataset(TrainingDataset(images, keypoints, split, ("a", "b")), path)
    return path


@pytest.mark.usefixtures("one_torch_thread")
def test_train_then_evaluate_writes_model_and_metrics(tmp_path, dataset_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(
        "model:\n  hyperparameters: {growth_rate: 4, n_transitions: 1, n_stacks: 1}\n"
        "train:\n  max_epochs: 1\n  batch_size: 4\n  accelerator: cpu\n"
    )
    assert main(["train", str(dataset_path), "--out", str(tmp_path / "model"), "--config", str(config)]) == 0
    assert (tmp_path / "model" / "model.pt").is_file() and (tmp_path / "model" / "metrics.csv").is_file()
    assert "best val/rmse_px" in capsys.readouterr().out

    out = tmp_path / "eval"
    assert main(["evaluate", str(tmp_path / "model" / "model.pt"), str(dataset_path), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n_frames"] == 3 and metrics["n_labeled_all"] == 6
    assert metrics["keypoints"] == ["a", "b"] and metrics["rmse_px_all"] > 0
    assert (out / "predictions.parquet").is_file()


def test_bad_config_key_names_the_file_and_key(tmp_path, dataset_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  epochs: 3\n")
    assert main(["train", str(dataset_path), "--out", str(tmp_path / "m"), "--config", str(config)]) == 2
    assert f"posecore: error: {config} (key train.epochs): unknown key; known: " in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_evaluate_with_a_missing_model_names_it(tmp_path, dataset_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.pt"), str(dataset_path), "--out", str(tmp_path / "e")]) == 2
    assert f"posecore: error: {tmp_path / 'missing.pt'}: exported model not found" in capsys.readouterr().err
