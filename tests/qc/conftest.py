"""Fabricated inputs of the QC report, following the contracts between stages (DESIGN.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

KEYPOINTS = ["snout", "leftear", "rightear", "tailbase"]
THRESHOLD = 0.5


@dataclass(frozen=True)
class QcInputs:
    """Paths of fabricated inputs and the numbers the report must show for them."""

    metrics_json: Path
    predictions_parquet: Path
    training_csv: Path
    trajectories_dir: Path
    probe_jsons: list[Path]
    keypoints: list[str]
    threshold: float
    metrics: dict
    labeled: dict[str, int]
    videos: dict[str, dict]  # video -> frames, median score, fraction below THRESHOLD (trajectory videos only)


def _write_trajectories(folder: Path, name: str, n_frames: int, fps: float, n_instances: int, seed: int) -> dict:
    """Write one video's trajectories in two files (the second with dictionary-encoded keypoints)."""
    rng = np.random.default_rng(seed)
    frames = np.arange(n_frames)
    rows = pd.DataFrame(
        [(f, i, k) for f in frames for i in range(n_instances) for k in KEYPOINTS],
        columns=["frame", "instance", "keypoint"],
    )
    rows["time_s"] = rows["frame"] / fps
    phase = rows["frame"].to_numpy() / 20.0
    rows["x"] = (100 + 30 * np.sin(phase) + rng.normal(0, 1, len(rows))).astype(np.float32)
    rows["y"] = (80 + 20 * np.cos(phase) + rng.normal(0, 1, len(rows))).astype(np.float32)
    rows["score"] = rng.uniform(0.2, 1.0, len(rows)).astype(np.float32)
    rows.loc[rows.index[::17], ["x", "y", "score"]] = np.nan  # missing points: NaN, scored as low
    video_dir = folder / f"video={name}"
    video_dir.mkdir(parents=True)
    half = n_frames // 2
    for part, chunk in enumerate((rows[rows["frame"] < half], rows[rows["frame"] >= half])):
        keypoint = pa.array(chunk["keypoint"].tolist(), pa.string())
        table = pa.table(
            {
                "frame": pa.array(chunk["frame"], pa.int64()),
                "time_s": pa.array(chunk["time_s"], pa.float64()),
                "instance": pa.array(chunk["instance"], pa.int16()),
                "keypoint": keypoint.dictionary_encode() if part else keypoint,
                "x": pa.array(chunk["x"], pa.float32()),
                "y": pa.array(chunk["y"], pa.float32()),
                "score": pa.array(chunk["score"], pa.float32()),
            }
        ).replace_schema_metadata({"posecore_version": "0.1.0", "model_sha256": "ab12cd34"})
        pq.write_table(table, video_dir / f"part-{part}.parquet")
    scores = rows["score"].to_numpy(dtype=float)
    return {
        "frames": n_frames,
        "median_score": float(np.nanmedian(scores)),
        "fraction_low": float(np.mean(~(scores >= THRESHOLD))),
    }


def make_inputs(root: Path, *, with_median: bool = True) -> QcInputs:
    """Fabricate every input of `build_report` under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    metrics = {
        "split": "test",
        "n_frames": 12,
        "keypoints": KEYPOINTS,
        "rmse_px": {"snout": 1.3, "leftear": 2.257, "rightear": None, "tailbase": 3.1},
        "rmse_px_all": 2.345,
    }
    if with_median:
        metrics["median_px"] = {"snout": 1.1, "leftear": 1.9, "rightear": None, "tailbase": 2.6}
        metrics["p90_px"] = {"snout": 2.0, "leftear": 3.456, "rightear": None, "tailbase": 5.25}
    metrics_json = root / "metrics.json"
    metrics_json.write_text(json.dumps(metrics))

    predictions = pd.DataFrame([(f, k) for f in range(12) for k in KEYPOINTS], columns=["frame", "keypoint"])
    predictions["x"], predictions["y"] = rng.uniform(0, 640, len(predictions)), rng.uniform(0, 480, len(predictions))
    predictions["score"] = rng.uniform(0, 1, len(predictions))
    predictions["x_true"], predictions["y_true"] = predictions["x"] + 1.0, predictions["y"] - 1.0
    predictions["error_px"] = np.sqrt(2.0)
    unlabeled = (predictions["keypoint"] == "rightear") | (
        (predictions["keypoint"] == "tailbase") & predictions["frame"].isin([3, 7])
    )
    predictions.loc[unlabeled, ["x_true", "y_true", "error_px"]] = np.nan
    predictions_parquet = root / "predictions.parquet"
    predictions.to_parquet(predictions_parquet)

    steps = np.arange(0, 200, 10)
    training = pd.DataFrame({"epoch": steps // 50, "step": steps, "train/loss": 1.0 / (1 + steps / 20)})
    validation = pd.DataFrame({"epoch": [0, 1, 2, 3], "step": [49, 99, 149, 199]})
    validation["val/loss"], validation["val/rmse_px"] = [0.5, 0.3, 0.2, 0.15], [9.0, 5.0, 3.5, 3.0]
    training_csv = root / "metrics.csv"
    pd.concat([training, validation]).sort_values("step").to_csv(training_csv, index=False)

    trajectories_dir = root / "trajectories"
    videos = {
        "mouse_a": _write_trajectories(trajectories_dir, "mouse_a", 120, 30.0, 1, seed=1),
        "007": _write_trajectories(trajectories_dir, "007", 80, 25.0, 2, seed=2),  # digits: must stay a string
    }
    probes = {
        "mouse_a": {"n_frames": 120, "fps": 30.0, "width": 640, "height": 480, "codec": "h264"},
        "007": {"n_frames": 100, "fps": 25.0, "width": 396, "height": 406, "codec": "h264"},
        "corrupt_c": {"n_frames": 50, "fps": 30.0, "width": 320, "height": 240, "codec": "mpeg4"},
    }
    probe_jsons = []
    for name, probe in probes.items():
        path = root / "videos" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        probe |= {"path": f"data/{name}.mp4", "pix_fmt": "yuv420p", "variable_frame_rate": False}
        probe["duration_s"] = probe["n_frames"] / probe["fps"]
        path.write_text(json.dumps(probe))
        probe_jsons.append(path)
        if name in videos:
            videos[name]["probed"] = probe["n_frames"]
    return QcInputs(
        metrics_json=metrics_json,
        predictions_parquet=predictions_parquet,
        training_csv=training_csv,
        trajectories_dir=trajectories_dir,
        probe_jsons=probe_jsons,
        keypoints=KEYPOINTS,
        threshold=THRESHOLD,
        metrics=metrics,
        labeled={"snout": 12, "leftear": 12, "rightear": 0, "tailbase": 10},
        videos=videos,
    )


@pytest.fixture
def make_qc_inputs():
    """The input factory, for tests that need a variant (`with_median=False`)."""
    return make_inputs


@pytest.fixture
def qc_inputs(tmp_path: Path) -> QcInputs:
    """Fresh fabricated inputs for one test."""
    return make_inputs(tmp_path / "inputs")


@pytest.fixture(scope="module")
def built_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[QcInputs, Path]:
    """A report built once from the full fabricated inputs, shared by the read-only tests."""
    from posecore.qc import build_report

    root = tmp_path_factory.mktemp("qc")
    inputs = make_inputs(root / "inputs")
    out = root / "out" / "report.html"
    build_report(
        out,
        model_name="dlc-openfield-hourglass",
        metrics_json=inputs.metrics_json,
        predictions_parquet=inputs.predictions_parquet,
        training_csv=inputs.training_csv,
        trajectories_dir=inputs.trajectories_dir,
        probe_jsons=inputs.probe_jsons,
        score_threshold=THRESHOLD,
    )
    return inputs, out
