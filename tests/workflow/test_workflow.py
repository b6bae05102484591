"""The whole workflow on a tiny synthetic archive, checked against its ground truth."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from posecore.io.trajectories import read_provenance
from posecore.synth import truncate_video

from .conftest import snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_project(tiny_project):
    snakemake(tiny_project)
    return tiny_project


def test_trajectories_match_the_ground_truth(finished_project):
    trajectories = pd.read_parquet(finished_project / "results" / "trajectories" / "demo")
    truth = pd.concat(pd.read_parquet(p) for p in (finished_project / "data/demo/ground_truth").glob("*.parquet"))
    assert set(trajectories["video"].astype(str)) == {"mouse-000", "mouse-001"}
    assert len(trajectories) == 2 * 80 * 6, "one row per frame and keypoint of every video"
    trajectories["keypoint"] = trajectories["keypoint"].astype(str)
    trajectories["video"] = trajectories["video"].astype(str)
    joined = trajectories.merge(truth, on=["video", "frame", "keypoint"], suffixes=("", "_true"))
    assert len(joined) == len(trajectories)
    visible = joined[joined["visible"]]
    error = np.hypot(visible["x"] - visible["x_true"], visible["y"] - visible["y_true"])
    # A model that learned nothing sits tens of pixels off in a 160x128 frame; after one
    # minute of training the median point is within a few pixels of the truth.
    assert np.median(error) < 4.0, f"median error {np.median(error):.2f} px"
    assert np.allclose(joined["time_s"], joined["time_s_true"])


def test_every_stage_wrote_its_output(finished_project):
    results = finished_project / "results"
    probe = json.loads((results / "videos" / "mouse-000.json").read_text())
    assert probe["n_frames"] == 80
    metrics = json.loads((results / "models/demo/eval/metrics.json").read_text())
    assert set(metrics["rmse_px"]) == {"snout", "left_ear", "right_ear", "neck", "tailbase", "tailtip"}
    errors = pd.read_parquet(results / "models/demo/eval/predictions.parquet")["error_px"].dropna()
    assert len(errors) > 0 and metrics["rmse_px_all"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert errors.median() < 5.0, "the test frames are predicted close to their labels"
    frames = pd.read_csv(results / "labeling/mouse-000/frames.tsv", sep="\t")
    assert len(frames) == 20 and len(list((results / "labeling/mouse-000/images").glob("*.png"))) == 20
    assert (results / "models/demo/checkpoints/best.ckpt").exists()
    html = (results / "qc/demo/report.html").read_text()
    assert "mouse-001" in html and "tailtip" in html
    shards = sorted((results / "predictions/demo/mouse-000").glob("shard-*.parquet"))
    assert len(shards) == 3, "80 frames in shards of 35"
    provenance = read_provenance(results / "trajectories/demo/video=mouse-000/part-0.parquet")
    assert provenance["config"]["model"]["name"] == "demo"
    assert len(provenance["model_hash"]) == 64


def test_a_corrupt_video_fails_alone(finished_project, demo_config):
    workdir = finished_project
    truncate_video(workdir / "data/demo/videos/mouse-001.mp4", workdir / "data/broken.mp4", fraction=0.4)
    before = (workdir / "results/trajectories/demo/video=mouse-000/part-0.parquet").stat().st_mtime
    videos = [
        ("mouse-000", "data/demo/videos/mouse-000.mp4", True),
        ("mouse-001", "data/demo/videos/mouse-001.mp4", False),
        ("broken", "data/broken.mp4", False),
    ]
    write_config(workdir, demo_config, videos)
    result = snakemake(workdir, "--keep-going", check=False)
    assert result.returncode != 0
    logs = "".join(p.read_text() for p in (workdir / "logs").rglob("*broken*"))
    assert "broken.mp4" in logs, "the log of the failing job names the file"
    # Nothing of the finished videos ran again, and the broken video left no trajectories.
    assert (workdir / "results/trajectories/demo/video=mouse-000/part-0.parquet").stat().st_mtime == before
    assert not (workdir / "results/trajectories/demo/video=broken").exists()
    write_config(workdir, demo_config, videos[:2])


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["inference"].update(shard_size="big"), "shard_size"),
        (lambda c: c["model"].update(architecture="resnet9000"), "architecture"),
        (lambda c: c.update(unknown_key=1), "unknown_key"),
    ],
)
def test_a_broken_config_stops_before_any_job(tmp_path, demo_config, edit, named):
    config = yaml.safe_load(yaml.safe_dump(demo_config))
    edit(config)
    write_config(tmp_path, config, [("v", "v.mp4", False)])
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_a_broken_video_sheet_stops_before_any_job(tmp_path, demo_config):
    write_config(tmp_path, demo_config, [("bad name", "v.mp4", False)])
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert "video" in result.stdout + result.stderr
    shutil.rmtree(tmp_path / "config")
