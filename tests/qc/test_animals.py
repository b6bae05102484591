import json

import numpy as np

from posecore.io import trajectories
from posecore.io.dataset import TrainingDataset, write_dataset
from posecore.qc.report import build_report

NAMES = ("nose", "tail")


def _tracked(path) -> None:
    """60 frames of two animals; track_1 gone in frames 20-29; swap risks in frames 10 and 40."""
    n = 60
    t = np.arange(n, dtype=float)
    peaks = np.zeros((n, 2, 2, 3))
    peaks[:, 0, :, 0], peaks[:, 0, :, 1] = 20 + t[:, None], [[10.0, 30.0]]
    peaks[:, 1, :, 0], peaks[:, 1, :, 1] = 100 - t[:, None], [[60.0, 80.0]]
    peaks[..., 2] = 0.9
    peaks[20:30, 1] = np.nan
    tracks = np.where(np.isfinite(peaks[..., 0, 0]), np.array(["track_0", "track_1"], object), "")
    risk = np.zeros((n, 2), bool)
    risk[[10, 40]] = True
    table = trajectories.instances_table(np.arange(n), t / 30, peaks, NAMES, np.full((n, 2), 0.9), tracks, risk)
    path.parent.mkdir(parents=True)
    trajectories.write_atomic(table, path)


def test_several_animals_get_counts_swap_risks_and_track_events(tmp_path, page):
    _tracked(tmp_path / "traj" / "video=pair" / "part-0.parquet")
    keypoints = np.full((4, 2, 2, 2), np.nan, np.float32)
    keypoints[:, 0] = [[5, 5], [9, 9]]
    keypoints[:2, 1] = [[30, 30], [35, 35]]
    tracks = np.where(np.isfinite(keypoints[..., 0]).any(-1), np.array(["a", "b"], object), "")
    dataset = TrainingDataset(np.zeros((4, 40, 40, 3), np.uint8), keypoints,
                              np.array(["train", "train", "val", "test"], object), NAMES, tracks=tracks)  # fmt: skip
    write_dataset(dataset, tmp_path / "ds.h5")
    metrics = {"split": "test", "map_sleap_sigma": 0.91, "map_dlc_sigma": 0.97, "rmse_px_all": 1.5,
               "animals": {"labeled": 1, "detected": 1, "matched": 1, "missed": 0, "false": 0}}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    build_report(tmp_path / "report.html", model_name="pair", trajectories_dir=tmp_path / "traj",
                 dataset_h5=tmp_path / "ds.h5", metrics_json=tmp_path / "metrics.json",
                 predictions_parquet=tmp_path / "none.parquet", figures_dir=tmp_path / "figures")  # fmt: skip
    shown = page((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert [h for h in shown.headings if h.startswith("h2")] == ["h2:Multi-animal model", "h2:Archive", "h2:Animals"]
    row = shown.rows("animals")["pair"]
    assert (
        row["tracks"] == "2" and row["range"] == "1–2" and row["swap-risk frames"] == "2" and row["tracks lost"] == "1"
    )
    assert "Swap-risk frames: 10, 40." in shown.plain
    events = shown.tables["events"]
    assert events[1:] == [["19", "track_1", "lost", "10"], ["30", "track_1", "found", "10"]]
    assert shown.rows("model")["OKS mAP, SLEAP's sigma (0.025)"]["value"] == "0.910"
    assert (tmp_path / "figures" / "animals-counts--pair.png").is_file()
