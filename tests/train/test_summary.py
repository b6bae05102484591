import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from posecore.errors import InputError
from posecore.train.config import TrainConfig
from posecore.train.summary import TrainingSummary, diagnose, guess_rmse, read_summary, warning_lines


def _curves(rmse, peak=None) -> pd.DataFrame:
    rmse = np.asarray(rmse, dtype=float)
    return pd.DataFrame(
        {
            "epoch": np.arange(len(rmse)),
            "val/rmse_px": rmse,
            "val/peak_score": np.full(len(rmse), 0.8 if peak is None else peak),
        }
    )


def _summary(config: TrainConfig | None = None, **fields) -> TrainingSummary:
    values = {"epochs": 50, "minutes": 30.0, "stopped_by": "time limit", "guess_val_rmse_px": 90.0}
    return TrainingSummary(**{**values, **fields, "config": asdict(config or TrainConfig())})


def test_a_settled_run_has_no_warning():
    settled = 3.0 + 80.0 * np.exp(-np.arange(50) / 5.0)  # 83 px down to 3.0 px well before the end
    assert diagnose(_curves(settled), _summary()) == ()


def test_a_run_whose_error_still_falls_at_the_end_is_not_done():
    falling = np.linspace(200.0, 117.0, 60)  # the 60-epoch run on new labels
    summary = _summary(TrainConfig(max_epochs=60), stopped_by="max_epochs", guess_val_rmse_px=250.0)
    (warning,) = diagnose(_curves(falling), summary)
    assert warning["kind"] == "not_converged"
    message = warning["message"]
    assert "still falling" in message and "from 135.3 px to 118.4 px (12%)" in message
    assert "over the last 12 of 60 validations (medians of 3 in a row)" in message
    assert "train.max_epochs, now 60" in message and "a GPU" in message


def test_a_time_budget_run_is_told_to_raise_its_minutes():
    (warning,) = diagnose(_curves(np.linspace(50.0, 20.0, 40)), _summary())
    assert "a longer budget (train.max_minutes, now 30)" in warning["message"]
    (warning,) = diagnose(_curves(np.linspace(50.0, 20.0, 40)), _summary(accelerator="gpu"))
    assert "GPU" not in warning["message"]


def test_noise_at_the_end_of_a_settled_run_is_not_a_fall():
    rng = np.random.default_rng(0)
    noisy = 3.0 + 60.0 * np.exp(-np.arange(300) / 20.0) + rng.uniform(-0.2, 0.2, 300)  # +-7% at the end
    assert diagnose(_curves(noisy), _summary()) == ()


def test_flat_maps_are_a_model_that_learned_nothing():
    (warning,) = diagnose(_curves(np.full(30, 150.0), peak=0.02), _summary(TrainConfig(peak_weight=0.0)))
    assert warning["kind"] == "not_learned"
    message = warning["message"]
    assert "flat (mean peak 0.020" in message and "no better than placing every keypoint" in message
    assert "set train.peak_weight to 20" in message


def test_a_model_no_better_than_the_mean_position_learned_nothing():
    (warning,) = diagnose(_curves(np.full(30, 95.0), peak=0.5), _summary())
    assert warning["kind"] == "not_learned" and "95.0 px, is no better" in warning["message"]
    assert "peak_weight" not in warning["message"], "the default peak weight is already there"


def test_a_model_with_half_the_error_of_the_mean_position_or_more_learned_little():
    (warning,) = diagnose(_curves(np.full(30, 50.0)), _summary())  # the guess: 90 px
    assert warning["kind"] == "learned_little" and "50.0 px, is 56% of" in warning["message"]
    assert diagnose(_curves(np.full(30, 40.0)), _summary()) == ()


def test_too_few_validations_to_judge_are_not_judged():
    assert diagnose(_curves([80.0, 20.0]), _summary()) == ()
    assert diagnose(pd.DataFrame({"epoch": [0], "train/loss": [1.0]}), _summary()) == ()


def test_guess_rmse_is_the_mean_training_position_against_the_validation_labels():
    train = np.array([[[0.0, 0.0]], [[10.0, 0.0]]])  # mean (5, 0)
    val = np.array([[[5.0, 4.0]], [[np.nan, np.nan]], [[8.0, 4.0]]])
    assert guess_rmse(train, val) == pytest.approx(np.sqrt((16 + 25) / 2))


def test_the_summary_is_written_and_read_back(tmp_path):
    summary = _summary(
        decisions=({"key": "flip", "value": False, "reason": "faces one way"},),
        warnings=({"kind": "not_converged", "message": "the model is not done"},),
        best_epoch=np.int64(41),
        best_val_peak_score=float("nan"),
    )
    path = summary.write(tmp_path / "training.json")
    read = read_summary(path)
    assert read.best_epoch == 41 and read.decisions == summary.decisions and read.warnings == summary.warnings
    assert read.best_val_peak_score is None, "NaN is written as null, which any JSON reader takes"
    assert read.config["max_epochs"] == "auto"
    assert warning_lines(read, "demo") == ["posecore: WARNING: model demo: the model is not done"]


def test_a_broken_summary_is_named(tmp_path):
    path = tmp_path / "training.json"
    path.write_text("{")
    with pytest.raises(InputError, match=r"training\.json: not valid JSON"):
        read_summary(path)
    path.write_text(json.dumps({"epochs": 3, "minutes": 1, "stopped_by": "max_epochs", "decisions": []}))
    with pytest.raises(InputError, match=r"training.json \(key warnings\): required key is missing"):
        read_summary(path)
    with pytest.raises(InputError, match="file not found"):
        read_summary(tmp_path / "none.json")


def test_one_lucky_validation_at_the_end_of_a_long_run_is_not_a_fall():
    # 9 validation frames: one point found 100 px off, or not, moves the RMSE by several px.
    rng = np.random.default_rng(3)
    curve = 5.5 + 40.0 * np.exp(-np.arange(420) / 30.0) + rng.choice([0.0, 3.0], 420)
    curve[400] = 4.2  # the best of the run, by luck, in its last fifth
    assert diagnose(_curves(curve), _summary()) == ()
