import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import posecore
from posecore.evaluate import (
    curve_sizes,
    evaluate,
    learning_curve,
    plot_predictions,
    score_predictions,
    write_evaluation,
)
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
    """Always puts the peak at image pixel `point`, (21.5, 13.5) by default (cell (5, 3) at stride 4)."""

    output_stride = 4
    input_multiple = 8

    def __init__(self, point: tuple[float, float] = (21.5, 13.5)) -> None:
        super().__init__()
        self.point = torch.tensor([[list(point)]], dtype=torch.float32)  # (1, K=1, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = x.shape
        maps, _ = confidence_maps(self.point.expand(b, 1, 2), (h // 4, w // 4), 4, 2.0)
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


def test_pck_counts_labeled_points_within_each_threshold(tmp_path):
    predictions = np.zeros((4, 2, 3), dtype=np.float32)
    labels = np.array([[[1, 0], [0, 3]], [[0, 6], [NAN, NAN]], [[0, 12], [0, 0]], [[NAN, NAN], [30, 40]]], np.float32)
    result = score_predictions(predictions, labels, ("a", "b"), pck_thresholds_px=(2, 5, 10))
    # a: errors 1, 6, 12; b: errors 3, 0, 50 (unlabeled points are not counted at all)
    assert result.pck["a"] == {2.0: 1 / 3, 5.0: 1 / 3, 10.0: 2 / 3}
    assert result.pck["b"] == {2.0: 1 / 3, 5.0: 2 / 3, 10.0: 2 / 3}
    assert result.pck_all == {2.0: 2 / 6, 5.0: 3 / 6, 10.0: 4 / 6}
    metrics = json.loads(write_evaluation(result, tmp_path)[0].read_text())
    assert metrics["pck_thresholds_px"] == [2.0, 5.0, 10.0] and metrics["pck_all"]["5"] == 0.5
    assert metrics["pck"]["b"]["10"] == 2 / 3


def test_prediction_figure_is_a_png_of_the_evaluated_frames(tmp_path):
    images = np.zeros((4, 30, 40, 1), dtype=np.uint8)
    labels = np.array([[[21.5, 13.5]], [[24.5, 17.5]], [[NAN, NAN]], [[0.0, 0.0]]], dtype=np.float32)
    dataset = TrainingDataset(images, labels, np.array(["test"] * 3 + ["train"], dtype=object), ("dot",))
    meta = ModelMeta("test", {}, ("dot",), (30, 40), 1, (0.0,), (1.0,), 4)
    result = evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), dataset, split="test")
    path = plot_predictions(dataset, result, tmp_path / "figs" / "predictions.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(path.parent.glob(".*tmp*"))


def _discs(n: int = 40, size: int = 32) -> TrainingDataset:
    """A bright disc on a dark frame; its centre is the one keypoint."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 30, size=(n, size, size, 1), dtype=np.uint8)
    centres = rng.uniform(6, size - 7, size=(n, 1, 2)).astype(np.float32)
    rows, cols = np.mgrid[0:size, 0:size]
    for i, (x, y) in enumerate(centres[:, 0]):
        images[i, (cols - x) ** 2 + (rows - y) ** 2 <= 9, 0] = 250
    split = np.array(["train"] * 24 + ["val"] * 8 + ["test"] * 8, dtype=object)
    return TrainingDataset(images, centres, split, ("centre",))


@pytest.mark.filterwarnings("ignore")
def test_learning_curve_trains_a_real_model_per_size_and_writes_its_table_and_figure(tmp_path):
    from posecore.train import ModelConfig, TrainConfig

    torch.set_num_threads(1)
    model = ModelConfig("leap", {"filters": 4, "n_downsampling": 1, "convs_per_block": 1, "batch_norm": True})
    train = TrainConfig(max_epochs=1, batch_size=4, accelerator="cpu", sigma_px=2.0)
    curve = learning_curve(_discs(), model, train, sizes=[8, 4], out_dir=tmp_path)
    assert curve["n_train"].tolist() == [4, 8]
    assert {"rmse_px", "median_px", "p90_px", "pck_5px", "seconds"} <= set(curve.columns)
    assert (curve["rmse_px"] > 0).all() and curve["pck_20px"].between(0, 1).all()
    assert pd.read_csv(tmp_path / "learning_curve.csv").shape[0] == 2
    assert (tmp_path / "learning_curve.png").stat().st_size > 0 and (tmp_path / "n4" / "model.pt").is_file()
    with pytest.raises(ValueError, match=r"sizes \[100\] are not between 1 and the 24 'train' frames"):
        learning_curve(_discs(), model, train, sizes=[100], out_dir=tmp_path)


def test_learning_curve_subsets_are_nested_in_the_train_split_and_scored_on_the_test_split(tmp_path, monkeypatch):
    # Training is replaced by a model that always answers the mean label of the frames it was
    # given, so each size's test error is known by hand from the subset it trained on.
    import posecore.models.export
    import posecore.train.fit

    dataset = _discs()
    subsets = {}

    def train_model(dataset, model_config, train_config, out_dir, train_indices):
        subsets[len(train_indices)] = np.asarray(train_indices)
        out_dir.mkdir(parents=True)  # as training does
        return SimpleNamespace(model_path=np.nanmean(dataset.keypoints[train_indices, 0], axis=0), seconds=7.0)

    def load_model(mean_label):
        meta = ModelMeta("test", {}, ("centre",), (32, 32), 1, (0.0,), (1.0,), 4)
        return LoadedModel(FixedPointModel(tuple(mean_label)), meta, "f00d")

    monkeypatch.setattr(posecore.train.fit, "train_model", train_model)
    monkeypatch.setattr(posecore.models.export, "load_model", load_model)
    curve = learning_curve(dataset, None, None, sizes=[24, 3, 10, 3], out_dir=tmp_path)
    assert curve["n_train"].tolist() == [3, 10, 24] and sorted(subsets) == [3, 10, 24]
    train = set(dataset.indices("train"))
    assert set(subsets[24]) == train and len(set(subsets[3])) == 3
    assert set(subsets[3]) < set(subsets[10]) < set(subsets[24]), "smaller subsets are nested in larger ones"
    test_labels = dataset.keypoints[dataset.indices("test"), 0]  # (8, 2)
    for n, row in curve.set_index("n_train").iterrows():
        errors = np.hypot(*(test_labels - dataset.keypoints[subsets[n], 0].mean(axis=0)).T)
        assert row["rmse_px"] == pytest.approx(np.sqrt(np.mean(errors**2)), abs=1e-3)
        assert row["median_px"] == pytest.approx(np.median(errors), abs=1e-3)
        assert row["p90_px"] == pytest.approx(np.percentile(errors, 90), abs=1e-3)
        assert row["pck_5px"] == np.mean(errors <= 5) and row["seconds"] == 7.0
    assert pd.read_csv(tmp_path / "learning_curve.csv").round(6).equals(curve.round(6))
    # The same seed draws the same subsets, another seed others; a subset of one frame is allowed.
    first = {n: s.copy() for n, s in subsets.items()}
    learning_curve(dataset, None, None, sizes=[1, 3, 10], out_dir=tmp_path / "again")
    assert all(np.array_equal(subsets[n], first[n]) for n in (3, 10)) and len(subsets[1]) == 1
    learning_curve(dataset, None, None, sizes=[10], out_dir=tmp_path / "seed1", seed=1)
    assert not np.array_equal(subsets[10], first[10])
    no_test_split = np.where(dataset.split == "test", "val", dataset.split).astype(object)
    no_test = TrainingDataset(dataset.images, dataset.keypoints, no_test_split, dataset.keypoint_names)
    with pytest.raises(ValueError, match=r"^the dataset has no 'test' frames to measure the learning curve on$"):
        learning_curve(no_test, None, None, sizes=[3], out_dir=tmp_path / "x")


def test_curve_sizes_end_with_the_whole_train_split():
    assert curve_sizes([10, 25, 50, 100, 200], 92) == [10, 25, 50, 92]
    assert curve_sizes([200, 10, 10], 9) == [9]
    assert curve_sizes([1, 2, 3, 0], 3) == [1, 2, 3] and curve_sizes([5], 1) == [1]
    with pytest.raises(ValueError, match=r"^the dataset has no 'train' frames$"):
        curve_sizes([10], 0)


def test_the_error_table_holds_each_points_prediction_and_label_in_its_columns(tmp_path):
    predictions = np.array([[[1.5, 2.5, 0.9], [3.0, 4.0, 0.8]], [[5.0, 6.0, 0.7], [7.0, 8.0, 0.6]]], np.float32)
    labels = np.array([[[1.5, 6.5], [NAN, NAN]], [[8.0, 10.0], [7.0, 8.0]]], dtype=np.float32)
    result = score_predictions(predictions, labels, ("a", "b"))  # frames 0..N-1, split "test" by default
    table = result.errors
    assert table["frame"].dtype == np.int64 and table["frame"].tolist() == [0, 0, 1, 1]
    assert table["keypoint"].tolist() == ["a", "b", "a", "b"]
    assert table["x"].tolist() == [1.5, 3.0, 5.0, 7.0] and table["y"].tolist() == [2.5, 4.0, 6.0, 8.0]
    assert table["score"].tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert table["x_true"].tolist()[::2] == [1.5, 8.0] and table["y_true"].tolist()[::2] == [6.5, 10.0]
    assert table["error_px"].tolist()[::2] == [4.0, 5.0] and result.split == "test"
    path = write_evaluation(result, tmp_path / "models" / "m" / "eval")[1]  # parent folders made
    assert path.name == "predictions.parquet"
    assert pq.read_schema(path).names == ["frame", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px"]
    with pytest.raises(ValueError, match=r"predictions must be \(N, K, 3\) = \(2, 2, 3\), got \(2, 2, 2\)"):
        score_predictions(predictions[..., :2], labels, ("a", "b"))


def test_statistics_of_eleven_errors_and_a_point_exactly_at_a_threshold():
    labels = np.zeros((11, 1, 2), dtype=np.float32)
    predictions = np.zeros((11, 1, 3), dtype=np.float32)
    predictions[:, 0, 0] = np.arange(11)  # errors 0, 1, ..., 10 px
    result = score_predictions(predictions, labels, ("a",), pck_thresholds_px=(5,))
    stats = result.per_keypoint["a"]
    assert stats["p90_px"] == 9.0 and stats["median_px"] == 5.0 and stats["mean_px"] == 5.0
    assert stats["rmse_px"] == pytest.approx(math.sqrt(385 / 11)) and stats["n_labeled"] == 11
    assert result.pck["a"] == {5.0: 6 / 11}, "an error of exactly 5 px is within 5 px"


def test_a_keypoint_never_labeled_has_nan_statistics_and_nothing_labeled_nan_overall():
    predictions = np.zeros((2, 2, 3), dtype=np.float32)
    labels = np.full((2, 2, 2), NAN, dtype=np.float32)
    labels[:, 0] = 3.0, 4.0
    result = score_predictions(predictions, labels, ("a", "b"), pck_thresholds_px=(5,))
    assert all(math.isnan(result.per_keypoint["b"][s]) for s in ("rmse_px", "mean_px", "median_px", "p90_px"))
    assert math.isnan(result.pck["b"][5.0]) and result.pck["a"][5.0] == 1.0
    nothing = score_predictions(predictions, np.full((2, 2, 2), NAN, np.float32), ("a", "b"), pck_thresholds_px=(5,))
    assert math.isnan(nothing.rmse_px) and math.isnan(nothing.pck_all[5.0]) and nothing.n_labeled == 0


def test_evaluate_scores_the_test_split_by_default_with_its_dataset_frame_numbers(tmp_path):
    images = np.zeros((4, 30, 40, 1), dtype=np.uint8)
    labels = np.array([[[0.0, 0.0]], [[21.5, 13.5]], [[24.5, 17.5]], [[21.5, 13.5]]], dtype=np.float32)
    split = np.array(["train", "test", "val", "test"], dtype=object)
    dataset = TrainingDataset(images, labels, split, ("dot",))
    meta = ModelMeta("test", {}, ("dot",), (30, 40), 1, (0.0,), (1.0,), 4)
    result = evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), dataset)
    assert result.split == "test" and result.errors["frame"].tolist() == [1, 3] and result.rmse_px < 1e-3
    one = evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), dataset, split="val")
    assert one.split == "val" and one.errors["frame"].tolist() == [2] and one.rmse_px == pytest.approx(5.0, abs=1e-3)
    empty = TrainingDataset(images, labels, np.array(["train"] * 4, dtype=object), ("dot",))
    with pytest.raises(ValueError, match="the dataset has no 'test' frames"):
        evaluate(LoadedModel(FixedPointModel(), meta, "f00d"), empty)
    metrics_path, _ = write_evaluation(result, tmp_path)
    metrics = json.loads(metrics_path.read_text())
    assert metrics_path.name == "metrics.json"
    assert (metrics["split"], metrics["n_frames"], metrics["n_labeled_all"]) == ("test", 2, 2)
    assert metrics["model_sha256"] == "f00d" and metrics["dataset_hash"] == dataset.content_hash()
    assert metrics["posecore_version"] == posecore.__version__
