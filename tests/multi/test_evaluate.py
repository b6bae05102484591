import json

import numpy as np
import pandas as pd
import pytest

from posecore.io.dataset import TrainingDataset
from posecore.multi.evaluate import measure, write_multi_evaluation
from posecore.multi.predict import Detections


def _dataset() -> TrainingDataset:
    keypoints = np.full((3, 2, 2, 2), np.nan, np.float32)
    keypoints[0, 0] = [[10, 10], [30, 20]]
    keypoints[0, 1] = [[60, 60], [80, 70]]
    keypoints[1, 0] = [[15, 40], [35, 50]]
    tracks = np.array([["a", "b"], ["a", ""], ["", ""]], dtype=object)  # frame 2 holds no animal
    images = np.zeros((3, 100, 100, 3), np.uint8)
    return TrainingDataset(images, keypoints, np.array(["test"] * 3, object), ("nose", "tail"), tracks=tracks)


def test_labeled_animals_are_matched_missed_or_false() -> None:
    ds = _dataset()
    peaks = np.full((3, 3, 2, 3), np.nan, np.float32)
    peaks[0, 0, :, :2] = ds.keypoints[0, 1] + 0.5  # frame 0: the second animal, half a pixel off in x and y
    peaks[0, 0, :, 2] = 0.9
    peaks[1, 0, :, :2] = [[90, 90], [95, 95]]  # frame 1: a detection far from the one animal
    peaks[1, 0, :, 2] = 0.4
    valid = np.isfinite(peaks[..., 0, 0])
    scores = np.where(valid, np.array([[0.9, 0, 0], [0.4, 0, 0], [0, 0, 0]]), np.nan)
    result = measure(Detections(peaks, scores.astype(np.float32), valid, peaks[:, :, 0, :2]), ds, np.arange(3))
    counts = result.counts.set_index("frame")
    assert counts.loc[0].tolist() == [2, 1, 1, 1, 0] and counts.loc[1].tolist() == [1, 1, 0, 1, 1]
    assert counts.loc[2].tolist() == [0, 0, 0, 0, 0]
    np.testing.assert_allclose(result.errors["error_px"], np.hypot(0.5, 0.5))
    assert set(result.errors["instance"]) == {1}
    # One of three animals found, one false detection ranked below it: precision 1 up to recall 1/3.
    assert result.map_dlc.map == pytest.approx(34 / 101)
    summary = result.summary()
    assert summary["animals"] == {"labeled": 3, "detected": 2, "matched": 1, "missed": 2, "false": 1}
    assert summary["rmse_px"]["nose"] == pytest.approx(np.hypot(0.5, 0.5))


def test_written_files_hold_the_metrics(tmp_path) -> None:
    ds = _dataset()
    peaks = np.full((3, 2, 2, 3), np.nan, np.float32)
    peaks[0, :, :, :2], peaks[0, :, :, 2] = ds.keypoints[0], 0.8
    peaks[1, 0, :, :2], peaks[1, 0, :, 2] = ds.keypoints[1, 0], 0.8
    valid = np.isfinite(peaks[..., 0, 0])
    scores = np.where(valid, 0.8, np.nan).astype(np.float32)
    metrics, predictions = write_multi_evaluation(
        measure(Detections(peaks, scores, valid, peaks[:, :, 0, :2]), ds, np.arange(3)), tmp_path
    )
    data = json.loads(metrics.read_text())
    assert data["map_sleap_sigma"] == pytest.approx(1.0) and data["map_dlc_sigma"] == pytest.approx(1.0)
    assert data["keypoints"] == ["nose", "tail"] and data["rmse_px_all"] == 0.0
    rows = pd.read_parquet(predictions)
    assert len(rows) == 6 and {"frame", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px"} <= set(rows)
