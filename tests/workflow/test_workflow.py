"""The whole workflow on a tiny synthetic archive, checked against its ground truth."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html import escape as html_escape

import numpy as np
import pandas as pd
import pytest
import yaml

from posecore.infer.archive import read_record
from posecore.infer.plan import read_plan
from posecore.io.dataset import read_dataset
from posecore.io.labels import read_labels
from posecore.io.trajectories import read_provenance
from posecore.io.video import probe
from posecore.synth import truncate_video

from .conftest import REPO, snakemake, snakemake_command, snakemake_environment, write_config

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
    assert len(shards) == 3, "80 frames in shards of 30"
    plan = read_plan(results / "shards/plan.tsv")
    assert [(p.job, p.shard.video, p.shard.start, p.shard.stop) for p in plan] == [
        (0, "mouse-000", 0, 30),
        (0, "mouse-000", 30, 60),
        (1, "mouse-000", 60, 80),
        (1, "mouse-001", 0, 30),
        (1, "mouse-001", 30, 60),
        (2, "mouse-001", 60, 80),
    ]
    records = {path.stem: read_record(path) for path in (results / "predictions/demo/jobs").glob("*.tsv")}
    assert sorted(records) == ["00000", "00001", "00002"]
    assert {r.status for rows in records.values() for r in rows} == {"done"}
    provenance = read_provenance(results / "trajectories/demo/video=mouse-000/part-0.parquet")
    assert provenance["config"]["model"]["name"] == "demo"
    assert len(provenance["model_hash"]) == 64
    figures = {path.name for path in (results / "qc/demo/figures").iterdir()}
    assert {"labels-positions.png", "training-curves.png", "training-worst-frames.png"} <= figures


def test_outlier_frames_open_as_labels_and_merge_into_the_dataset(finished_project, demo_config, tmp_path):
    refine = finished_project / "results/labeling/refine/demo/mouse-001"
    machine_csv = "labeled-data/mouse-001/machinelabels-iter0.csv"
    machine = pd.read_csv(refine / machine_csv, header=[0, 1, 2], index_col=[0, 1, 2])
    assert 0 < len(machine) <= demo_config["outliers"]["n_frames"]
    assert list(machine.columns.unique("bodyparts")) == demo_config["dataset"]["keypoints"]
    # In a copy of the project, a labeler corrects the frames and saves them as CollectedData in
    # a labels folder of their own, listed after the original labels.
    project = tmp_path / "project"
    shutil.copytree(finished_project, project, ignore=shutil.ignore_patterns(".snakemake"))
    corrected = project / "labels/round-1"
    shutil.copytree(refine, corrected)
    table = pd.read_csv(corrected / machine_csv, header=[0, 1, 2], index_col=[0, 1, 2])
    table = table.drop(columns="likelihood", level=2).T.reset_index()
    table["scorer"] = "alice"
    table = table.set_index(["scorer", "bodyparts", "coords"]).T
    table.to_csv(corrected / "labeled-data/mouse-001/CollectedData_alice.csv")
    assert len(read_labels(corrected / "labeled-data/mouse-001/CollectedData_alice.csv")) == len(machine)
    config = yaml.safe_load(yaml.safe_dump(demo_config))
    config["dataset"]["labels"].append("labels/round-1/labeled-data/*/CollectedData_*.csv")
    videos = [(f"mouse-{i:03d}", f"data/demo/videos/mouse-{i:03d}.mp4", i == 0) for i in range(2)]
    write_config(project, config, videos, refine=("mouse-001",))
    dry_run = snakemake(project, "--dry-run").stdout
    assert "rule assemble_dataset:" in dry_run and "rule train:" in dry_run, "new labels retrain the model"
    before = read_dataset(finished_project / "results/datasets/demo.h5")
    snakemake(project, "results/datasets/demo.h5")
    after = read_dataset(project / "results/datasets/demo.h5")
    refined = [path for path in after.source_path if "round-1" in str(path)]
    assert len(refined) == len(machine), "every corrected frame is in the dataset"
    assert len(before.images) < len(after.images) <= len(before.images) + len(machine)


def test_the_archive_opens_in_movement_and_labeled_videos_are_made_on_request(finished_project, demo_config):
    archive = finished_project / "results/trajectories/demo"
    if sys.version_info >= (3, 11):  # movement's own requirement
        from posecore.io.movement_dataset import load_poses

        rows = pd.read_parquet(archive / "video=mouse-001" / "part-0.parquet")
        dataset = load_poses(archive, video="mouse-001")
        assert dict(dataset.sizes) == {"time": 80, "space": 2, "keypoints": 6, "individuals": 1}
        assert list(dataset["keypoints"].values) == demo_config["dataset"]["keypoints"]
        np.testing.assert_array_equal(dataset["time"].values, rows["time_s"].unique())
        np.testing.assert_array_equal(dataset["frame"].values, np.arange(80))
        # Rows are frame-major in the model's keypoint order: (80 * 6, 2) against (80, 6, 2).
        position = dataset["position"].sel(individuals="animal0").transpose("time", "keypoints", "space")
        np.testing.assert_array_equal(position.values.reshape(-1, 2), rows[["x", "y"]].to_numpy(np.float64))
        confidence = dataset["confidence"].sel(individuals="animal0").values.reshape(-1)
        np.testing.assert_array_equal(confidence, rows["score"].to_numpy(np.float64))
    labeled = finished_project / "results/labeled_videos/demo"
    assert not labeled.exists(), "labeled videos are an optional target"
    snakemake(finished_project, "labeled_videos")
    for video in ("mouse-000", "mouse-001"):
        info = probe(labeled / f"{video}.mp4")
        assert (info.n_frames, info.width, info.height, info.codec) == (80, 160, 128, "h264")
        assert (finished_project / f"logs/label_video/demo/{video}.log").exists()


def test_a_run_killed_mid_inference_resumes_to_the_same_trajectories(finished_project):
    workdir = finished_project
    done = workdir / "results/trajectories/demo/video=mouse-001/part-0.parquet"
    expected = pd.read_parquet(done)
    # Everything of mouse-001's inference goes (its shards, the records of the two jobs that hold
    # them) and everything downstream of it, as if the run had never got there.
    shards = workdir / "results/predictions/demo/mouse-001"
    shutil.rmtree(shards)
    for job in ("00001", "00002"):
        (workdir / f"results/predictions/demo/jobs/{job}.tsv").unlink()
    shutil.rmtree(workdir / "results/labeling/refine/demo/mouse-001")
    shutil.rmtree(workdir / "results/qc/demo")
    done.unlink()
    kept = workdir / "results/predictions/demo/mouse-000/shard-00002.parquet"  # in job 1 too, finished
    kept_stamp = kept.stat().st_mtime_ns
    command = [*snakemake_command(workdir), "--cores", "1"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with subprocess.Popen(command, env=snakemake_environment(), start_new_session=True, **quiet) as run:
        deadline = time.monotonic() + 600
        while not list(shards.glob("shard-*.parquet")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.poll() is None, "the run was still going when the first shard appeared"
        # One shard is written and the next is being computed: kill Snakemake and its jobs at once.
        os.killpg(run.pid, signal.SIGKILL)
        finished = {path: path.stat().st_mtime_ns for path in shards.glob("shard-*.parquet")}
    assert run.returncode == -signal.SIGKILL, "the run was killed, not finished"
    assert not done.exists() and len(finished) < 3
    snakemake(workdir, "--unlock")
    snakemake(workdir)
    resumed = pd.read_parquet(done)
    pd.testing.assert_frame_equal(resumed, expected)
    # The shards finished before the kill were kept, not made again.
    assert {path: path.stat().st_mtime_ns for path in finished} == finished
    assert kept.stat().st_mtime_ns == kept_stamp
    statuses = {
        (r.shard.video, r.shard.index): r.status
        for r in read_record(workdir / "results/predictions/demo/jobs/00001.tsv")
    }
    assert statuses[("mouse-000", 2)] == "kept"
    assert not list(workdir.glob("results/**/.*tmp*")), "no temporary file is left behind"


def planned_rules(dry_run: str) -> set[str]:
    """The rules of the jobs a dry run lists in its "Job stats" table (none when there is nothing to do)."""
    lines = dry_run.splitlines()
    if "Job stats:" not in lines:
        return set()
    table = lines[lines.index("Job stats:") + 3 :]  # after the header and its rule
    rules = [line.split()[0] for line in table[: table.index("")] if line.strip()]
    return set(rules) - {"total"}


def test_only_what_changes_an_output_reruns(finished_project, demo_config, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(finished_project, project)
    videos = [(f"mouse-{i:03d}", f"data/demo/videos/mouse-{i:03d}.mp4", i == 0) for i in range(2)]

    def rerun_after(edit):
        config = copy.deepcopy(demo_config)  # keys in their order: Snakemake compares parameters as text
        edit(config)
        write_config(project, config, videos, refine=("mouse-001",))
        return planned_rules(snakemake(project, "--dry-run").stdout)

    assert rerun_after(lambda c: None) == set(), "nothing to do after a finished run"
    assert rerun_after(lambda c: c["qc"].update(score_threshold=0.4)) == {"qc_report", "all"}
    # How inference runs changes no row: nothing reruns.
    assert rerun_after(lambda c: c["inference"].update(batch_size=4, decoders=1, compile="never")) == set()
    assert rerun_after(lambda c: c["inference"].update(priors=False)) >= {"infer", "aggregate", "qc_report"}
    assert rerun_after(lambda c: c["inference"].update(precision="bfloat16")) >= {"infer", "aggregate", "qc_report"}
    trained = rerun_after(lambda c: c["train"].update(learning_rate=0.002))
    assert {"train", "evaluate", "qc_report"} <= trained


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
    # The QC report is still built, over the videos that finished, and names the failure.
    html = (workdir / "results/qc/demo/report.html").read_text()
    assert "broken.mp4" in html and "mouse-000" in html
    # On top, the job that failed, its log and its error, and that what the page shows may be stale.
    assert "built after a run in which jobs failed" in html
    assert "aggregate failed (logs/aggregate/demo/broken.log): VideoError: " in html
    write_config(workdir, demo_config, videos[:2])


@pytest.fixture
def dry_project(tmp_path, demo_config):
    """A project whose one video and label file exist (empty): its config dry-runs as it is."""
    labels = tmp_path / "data/demo/labeled-data/v/CollectedData_synth.csv"
    labels.parent.mkdir(parents=True)
    labels.touch()
    (tmp_path / "v.mp4").touch()

    def write(config=demo_config, name="v"):
        write_config(tmp_path, config, [(name, "v.mp4", True)])
        return snakemake(tmp_path, "--dry-run", check=False)

    return tmp_path, write


def test_the_bundled_config_dry_runs_in_a_project_whose_files_exist(dry_project):
    _, dry_run = dry_project
    result = dry_run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"probe_video", "assemble_dataset", "train", "plan_inference", "qc_report"} <= planned_rules(result.stdout)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["inference"].update(frames_per_shard="big"),
            "config/config.yaml: inference.frames_per_shard: 'big' is not of type 'integer'",
        ),
        (
            lambda c: c["model"].update(architecture="resnet9000"),
            "config/config.yaml: model.architecture: 'resnet9000' is not one of",
        ),
        (lambda c: c.update(unknown_key=1), "config/config.yaml: unknown key unknown_key; the closest is "),
        (
            lambda c: c["inference"].update(shard_sise=500),
            "config/config.yaml: unknown key inference.shard_sise; the closest is inference.batch_size "
            "(inference takes: batch_size, compile,",
        ),
    ],
    ids=["type", "enum", "unknown key", "nested typo"],
)
def test_a_broken_config_stops_before_any_job_naming_the_key_in_one_line(dry_project, demo_config, edit, message):
    workdir, dry_run = dry_project
    config = yaml.safe_load(yaml.safe_dump(demo_config))
    edit(config)
    result = dry_run(config)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if message in line]
    assert lines, result.stderr[-3000:]
    assert "Failed validating" not in result.stderr, "jsonschema's report, the whole schema in it"
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("name", ["bad name", "007"])
def test_a_broken_video_sheet_stops_before_any_job(dry_project, name):
    # "007" would be read back as the number 7 from the hive folder video=007.
    workdir, dry_run = dry_project
    result = dry_run(name=name)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config/videos.tsv (row 2): column video: " in output and repr(name) in output
    assert not (workdir / "results").exists()


def test_the_learning_curve_rule_measures_test_error_against_training_frames(finished_project, demo_config, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(finished_project, project, ignore=shutil.ignore_patterns(".snakemake"))
    config = yaml.safe_load(yaml.safe_dump(demo_config))
    config["train"]["max_epochs"] = 1
    config["learning_curve"] = {"sizes": [4, 10_000]}
    videos = [(f"mouse-{i:03d}", f"data/demo/videos/mouse-{i:03d}.mp4", i == 0) for i in range(2)]
    write_config(project, config, videos, refine=("mouse-001",))
    target = "results/models/demo/learning_curve/learning_curve.csv"
    result = snakemake(project, target)
    assert "rule train:" not in result.stdout + result.stderr, "the model itself is not retrained"
    curve = pd.read_csv(project / target)
    n_train = len(read_dataset(project / "results/datasets/demo.h5").indices("train"))
    # 10,000 is more frames than there are: the curve ends with the whole train split instead.
    assert list(curve["n_train"]) == [4, n_train]
    assert curve["rmse_px"].notna().all() and (project / "results/models/demo/learning_curve/n4/model.pt").is_file()
    assert (project / "results/models/demo/learning_curve/learning_curve.png").stat().st_size > 0


def test_a_failed_reassembly_keeps_the_last_good_dataset_and_model(finished_project, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(finished_project, project)
    history = project / "results/datasets/history/demo"
    (kept,) = list(history.iterdir())
    model_history = list((project / "results/models/demo/history").iterdir())
    assert (kept / "demo.h5").read_bytes() == (project / "results/datasets/demo.h5").read_bytes()
    # A labeler saves a label file with a broken row: the dataset is assembled anew, and fails.
    labels = next((project / "data/demo/labeled-data").glob("*/CollectedData_synth.csv"))
    labels.write_text(labels.read_text() + "labeled-data/x/img0999.png" + ",oops" * 12 + "\n")
    result = snakemake(project, check=False)
    assert result.returncode != 0 and not (project / "results/datasets/demo.h5").exists()
    # The last good dataset and model are still there, and the report says what failed.
    assert list(history.iterdir()) == [kept] and read_dataset(kept / "demo.h5").images.shape[0] > 0
    assert list((project / "results/models/demo/history").iterdir()) == model_history
    assert (model_history[0] / "model.pt").stat().st_size > 0
    html = (project / "results/qc/demo/report.html").read_text()
    assert "assemble_dataset failed (logs/assemble_dataset/demo.log)" in html


def test_labels_without_videos_train_and_a_model_not_done_is_said_at_the_end(tmp_path, demo_config):
    """A user with labels and no videos yet (a sheet with its header alone) trains, evaluates and
    gets the QC report; a training budget far too short is warned of in the training log, the
    report and the run's closing lines."""
    from posecore.synth import SynthConfig, make_archive

    make_archive(tmp_path / "data" / "demo", SynthConfig(n_videos=1, n_frames=30, n_labeled_per_video=30, seed=5))
    config = yaml.safe_load(yaml.safe_dump(demo_config))
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["train"]
    config["train"] = {**shipped, "max_epochs": 3}  # the defaults, far too short
    write_config(tmp_path, config, [])
    result = snakemake(tmp_path)
    summary = json.loads((tmp_path / "results/models/demo/training.json").read_text())
    assert summary["warnings"], "three epochs leave the model far from done"
    messages = [warning["message"] for warning in summary["warnings"]]
    closing = result.stderr[result.stderr.rindex("Finished job") :]
    assert all(f"posecore: WARNING: model demo: {message}" in closing for message in messages)
    assert all(message in (tmp_path / "logs/train/demo.log").read_text() for message in messages)
    html = (tmp_path / "results/qc/demo/report.html").read_text()
    assert all(f"Warning: {html_escape(message)}" in html for message in messages)
    decided = {decision["key"]: decision["value"] for decision in summary["decisions"]}
    assert decided["crop_size"] == 0, "160x128 frames train whole"
    assert f"<td>train.flip</td><td>{decided['flip']}</td>" in html, "the report says what auto decided"
    assert json.loads((tmp_path / "results/models/demo/eval/metrics.json").read_text())["n_frames"] > 0
