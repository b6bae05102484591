from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.evaluate import score_predictions, write_evaluation
from posecore.io.dataset import TrainingDataset
from posecore.qc.training import training_section
from posecore.train.summary import TrainingSummary, read_summary

NAMES = ("nose", "paw", "tail")
TEST = np.arange(4, 12)  # dataset rows of the test frames
# Planted error (px) of each test frame's keypoints; NaN: the keypoint is unlabeled there.
ERRORS = np.array(
    [[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [9.0, 12.0, 30.0], [2.0, 2.2, np.nan],
     [4.0, 1.0, 1.6], [6.0, 8.0, 10.0], [0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]
)  # fmt: skip
WORST = [6, 9, 11, 8, 7, 4, 10, 5]  # rows by mean error: 17, 8, 3, 2.2, 2.1, 2, 1, 0.5


@dataclass(frozen=True)
class Evaluation:
    """A fabricated dataset, its evaluation's files and a training log."""

    dataset: TrainingDataset
    metrics_json: Path
    predictions_parquet: Path
    training_csv: Path


def _dataset(rng: np.random.Generator) -> TrainingDataset:
    n = 12
    keypoints = np.stack([rng.uniform(8, 56, (n, 3)), rng.uniform(8, 40, (n, 3))], axis=-1)  # (N, K, 2)
    keypoints[TEST[3], 2] = np.nan
    return TrainingDataset(
        images=rng.integers(0, 256, (n, 48, 64, 3), dtype=np.uint8),
        keypoints=keypoints.astype(np.float32),
        split=np.array(["train"] * 4 + ["test"] * 8, dtype=object),
        keypoint_names=NAMES,
        source_video=np.array(["vid"] * n, dtype=object),
        source_frame=np.arange(n, dtype=np.int64) * 5,
        source_path=np.array([f"labeled-data/vid/img{i * 5:04d}.png" for i in range(n)], dtype=object),
    )


def _evaluation(root: Path) -> Evaluation:
    rng = np.random.default_rng(1)
    dataset = _dataset(rng)
    labels = dataset.keypoints[TEST].astype(np.float64)  # (T, K, 2)
    angle = rng.uniform(0, 2 * np.pi, ERRORS.shape)
    offset = np.nan_to_num(ERRORS)[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)  # (T, K, 2)
    predicted = np.nan_to_num(labels, nan=20.0) + offset
    predictions = np.concatenate([predicted, np.full((*ERRORS.shape, 1), 0.9)], axis=-1)  # (T, K, 3)
    result = score_predictions(predictions, labels, NAMES, frames=TEST, split="test")
    metrics_json, predictions_parquet = write_evaluation(result, root / "eval")
    steps = np.arange(0, 40, 4)
    training = pd.DataFrame({"epoch": steps // 10, "step": steps, "train/loss": 1.0 / (1 + steps)})
    validation = pd.DataFrame({"epoch": [0, 1, 2, 3], "step": [9, 19, 29, 39]})
    validation["val/loss"], validation["val/rmse_px"] = [0.5, 0.3, 0.2, 0.25], [9.0, 5.0, 3.5, 4.0]
    training_csv = root / "metrics.csv"
    pd.concat([training, validation]).sort_values("step").to_csv(training_csv, index=False)
    return Evaluation(dataset, metrics_json, predictions_parquet, training_csv)


@pytest.fixture
def evaluation(tmp_path: Path) -> Evaluation:
    """A fresh fabricated evaluation (tests may break its files)."""
    return _evaluation(tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """One evaluation and its section (5 worst frames), rendered once for the read-only tests."""
    evaluation = _evaluation(tmp_path_factory.mktemp("training"))
    return evaluation, _section(evaluation, n_worst=5)


def _section(e: Evaluation, **changes):
    arguments = {
        "training_csv": e.training_csv,
        "metrics_json": e.metrics_json,
        "predictions_parquet": e.predictions_parquet,
        "dataset": e.dataset,
    } | changes
    return training_section(**arguments)


def test_error_table_gives_the_planted_errors_per_keypoint(built, page):
    tables = page(built[1].body)
    header, *rows = tables.tables["training-errors"]
    assert header == ["keypoint", "n labeled", "RMSE (px)", "mean (px)", "p50 (px)", "p75 (px)", "p90 (px)",
                      "p95 (px)", "max (px)"]  # fmt: skip
    by_name = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    for k, name in enumerate([*NAMES, "all keypoints"]):
        e = ERRORS[:, k] if k < 3 else ERRORS.ravel()
        e = e[np.isfinite(e)]
        row = by_name[name]
        assert int(row["n labeled"]) == len(e)
        assert float(row["RMSE (px)"]) == pytest.approx(np.sqrt(np.mean(e**2)), abs=0.006)
        for q in (50, 75, 90, 95):
            assert float(row[f"p{q} (px)"]) == pytest.approx(np.percentile(e, q), abs=0.006)
        assert float(row["max (px)"]) == pytest.approx(e.max(), abs=0.006)


def test_worst_frames_come_first_with_their_source(built, page):
    section = built[1]
    rows = page(section.body).tables["training-worst"][1:]
    assert [int(r[0]) for r in rows] == WORST[:5]
    assert rows[0][1] == "vid frame 30" and float(rows[0][2]) == pytest.approx(17.0, abs=0.01)
    assert rows[0][3:] == ["30.00", "tail"]
    figure = {f.name: f for f in section.figures}["training-worst-frames"]
    image = Image.open(io.BytesIO(figure.png))
    assert image.format == "PNG" and image.width < 1000 and len(figure.png) < 400_000


def test_curves_and_their_summary(built, page):
    section = built[1]
    assert [f.name for f in section.figures] == ["training-curves", "training-errors", "training-worst-frames"]
    text = page(section.body).plain
    assert "4 epochs, 40 steps, best validation RMSE 3.50 px at epoch 2, last 4.00 px" in text
    for figure in section.figures:
        assert Image.open(io.BytesIO(figure.png)).format == "PNG"
        assert figure.html().count("data:image/png;base64,") == 1


def test_without_a_training_log_the_section_says_so(evaluation):
    section = _section(evaluation, training_csv=None)
    assert "No training log was given." in section.body
    assert [f.name for f in section.figures] == ["training-errors", "training-worst-frames"]


def test_a_broken_training_log_names_the_file(evaluation):
    evaluation.training_csv.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(InputError, match="missing column step") as caught:
        _section(evaluation)
    assert caught.value.path == str(evaluation.training_csv)


def test_predictions_of_another_dataset_are_refused(evaluation):
    table = pd.read_parquet(evaluation.predictions_parquet)
    table.loc[table["frame"] == 7, "x_true"] += 5.0
    table.to_parquet(evaluation.predictions_parquet)
    with pytest.raises(InputError, match=r"frame 7 .*another dataset") as caught:
        _section(evaluation)
    assert caught.value.path == str(evaluation.predictions_parquet)


def test_predictions_of_a_frame_outside_the_dataset_are_refused(evaluation):
    table = pd.read_parquet(evaluation.predictions_parquet)
    table.loc[table["frame"] == 11, "frame"] = 12
    table.to_parquet(evaluation.predictions_parquet)
    with pytest.raises(InputError, match="frame 12 is not a row of the dataset"):
        _section(evaluation)


def test_metrics_of_another_evaluation_or_dataset_are_refused(evaluation):
    metrics = json.loads(evaluation.metrics_json.read_text())
    metrics["rmse_px"]["paw"] += 0.5
    evaluation.metrics_json.write_text(json.dumps(metrics))
    with pytest.raises(InputError, match=r"RMSE of 'paw'.*different evaluations"):
        _section(evaluation)
    metrics["keypoints"] = ["nose", "tail", "paw"]
    evaluation.metrics_json.write_text(json.dumps(metrics))
    with pytest.raises(InputError, match="are not the dataset's") as caught:
        _section(evaluation)
    assert caught.value.path == str(evaluation.metrics_json)
    evaluation.metrics_json.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        _section(evaluation)


def test_the_training_run_says_what_auto_decided_and_warns_of_a_model_not_done(evaluation, tmp_path, page):
    warning = "the model is not done: its validation RMSE was still falling when training stopped (time limit)"
    summary = TrainingSummary(
        epochs=41,
        minutes=30.0,
        stopped_by="time limit",
        best_epoch=40,
        best_val_rmse_px=12.5,
        guess_val_rmse_px=80.0,
        decisions=({"key": "crop_size", "value": 256, "reason": "the animal spans up to 131 px"},),
        warnings=({"kind": "not_converged", "message": warning},),
    ).write(tmp_path / "training.json")
    shown = page(_section(evaluation, summary_json=summary).body)
    assert "h3:The training run" in shown.headings
    assert f"Warning: {warning}" in shown.plain
    assert "41 epochs in 30.0 min on the CPU, stopped by time limit; best epoch 40" in shown.plain
    assert shown.rows("training-decisions") == {
        "train.crop_size": {"setting": "train.crop_size", "decided": "256", "why": "the animal spans up to 131 px"}
    }
    done = replace(read_summary(summary), warnings=()).write(tmp_path / "done.json")
    assert "No warning" in page(_section(evaluation, summary_json=done).body).plain
    summary.write_text("{}")
    with pytest.raises(InputError, match=r"training\.json \(key epochs\): required key is missing"):
        _section(evaluation, summary_json=summary)
