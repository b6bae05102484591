import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from posecore.evaluate import evaluate, score_predictions, write_evaluation
from posecore.io.dataset import TrainingDataset
from posecore.models import LoadedModel, ModelMeta
from posecore.train.targets import confidence_maps

NAN = float("nan")


def test_rmse_matches_a_hand_computation_and_skips_unlabeled_points():
    predictions = np.array(
        [[[0, 0, 0.9], [10, 10, 0.8]], [[3, 4, 0.7], [5, 5, 0.6]]], dtype=np.float32
    )  # (N=2, K=2, 3)
    labels = np.array([[[3, 4], [10, 10]], [[3, 4], [NAN, NAN]]], dtype=np.float32)
    result = score_predictions(predictions, labels, ("nose", "tail"), frames=np.array([7, 9]), split="val")
    # nose errors 5 and 0; tail error 0 (frame 9 unlabeled, skipped, not counted as 0)
    assert math.isclose(result.per_keypoint["nose"]["rmse_px"], math.sqrt((25 + 0) / 2), rel_tol=1e-6)
    assert result.per_keypoint["tail"] == {
        "rmse_px": 0.0,
        "mean_px": 0.0,
        "median_px": 0.0,
        "p90_px": 0.0,
        "n_labeled": 1,
    }
    assert math.isclose(result.rmse_px, math.sqrt(25 / 3), rel_tol=1e-6)
    assert result.n_frames == 2 and result.n_labeled == 3 and result.split == "val"
    table = result.errors
    assert list(table.columns) == ["frame", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px"]
    assert table["frame"].tolist() == [7, 7, 9, 9] and table["keypoint"].tolist() == ["nose", "tail"] * 2
    assert table["error_px"].tolist()[:3] == [5.0, 0.0, 0.0] and math.isnan(table["error_px"].iloc[3])


def test_a_keypoint_never_labeled_has_nan_rmse_written_as_null(tmp_path):
    predictions = np.zeros((1, 2, 3), dtype=np.float32)
    labels = np.array([[[1, 0], [NAN, NAN]]], dtype=np.float32)
    result = score_predictions(predictions, labels, ("a", "b"))
    assert math.isnan(result.per_keypoint["b"]["rmse_px"]) and result.rmse_px == 1.0
    metrics_path, table_path = write_evaluation(result, tmp_path / "eval")
    metrics = json.loads(metrics_path.read_text())
    assert metrics["rmse_px"]["b"] is None and metrics["rmse_px_all"] == 1.0
    assert metrics["n_labeled"] == {"a": 1, "b": 0} and metrics["keypoints"] == ["a", "b"]
    assert pd.read_parquet(table_path).shape == (2, 8)


class FixedPointModel(nn.Module):
    """Always puts the peak at image pixel (21.5, 13.5) (cell (5, 3) at stride 4)."""

    output_stride = 4
    input_multiple = 8

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = x.shape
        maps, _ = confidence_maps(torch.tensor([[[21.5, 13.5]]]).expand(b, 1, 2), (h // 4, w // 4), 4, 2.0)
        return [maps]


def test_evaluate_predicts_the_split_and_scores_it(tmp_path):
    images = np.zeros((4, 30, 40, 1), dtype=np.uint8)
    labels = np.array([[[21.5, 13.5]], [[24.5, 17.5]], [[NAN, NAN]], [[0.0, 0.0]]], dtype=np.float32)
    split = np.array(["test", "test", "test", "train"], dtype=object)
    dataset = TrainingDataset(images, labels, split, ("dot",))
    meta = ModelMeta("test", {}, ("dot",), (30, 40), 1, (0.0,), (1.0,), 4)
    result = evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), dataset, split="test")
    assert result.n_frames == 3 and result.n_labeled == 2
    assert math.isclose(result.rmse_px, math.sqrt((0 + 25) / 2), rel_tol=1e-4)  # errors 0 and 5 px
    assert result.model_sha256 == "f00d" and result.dataset_hash == dataset.content_hash()
    assert result.errors["frame"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="differ from the dataset's"):
        evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), TrainingDataset(images, labels, split, ("x",)))
