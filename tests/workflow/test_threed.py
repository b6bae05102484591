"""The workflow's 3D rules on a synthetic rig: calibrate from rendered board images, triangulate a session.

The 2D trajectories of the session's views are written directly (the true projections plus
noise, one view with wrong points), so that the test needs no trained model. The dry run goes
through the repository's Snakefile (triangulate wired to the inference's trajectories); the real
run through a Snakefile in the test's folder that includes the repository's common.smk,
frames.smk (probe_video) and threed.smk only, so that Snakemake takes the 2D files as given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from posecore.synth.animal import KEYPOINTS, SKELETON
from posecore.synth.rig_archive import RigArchiveConfig, make_rig_archive, write_views_2d
from posecore.threed.compare import similarity
from posecore.threed.rig import read_calibration
from posecore.threed.trajectories import read_metadata3d

from .conftest import REPO, snakemake

pytestmark = pytest.mark.slow  # each Snakemake run starts in about 10 s

TARGET = "results/trajectories3d/demo/session=s1/part-0.parquet"
THREED_ONLY = """configfile: "config/config.yaml"


include: "{rules}/common.smk"
include: "{rules}/frames.smk"
include: "{rules}/threed.smk"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, object]:
    workdir = tmp_path_factory.mktemp("threed")
    archive = make_rig_archive(workdir / "data", RigArchiveConfig(n_cameras=3, n_board_frames=12, n_frames=20, seed=3))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    board = {"type": "charuco", **{k: v for k, v in archive.board.__dict__.items() if k != "kind"}}
    config["threed"]["rigs"] = {
        "rig1": {
            "board": board,
            "cameras": {name: str(workdir / "data" / "calibration" / name / "*.png") for name in archive.videos},
        }
    }
    # The dry run goes through the whole Snakefile, which wants the config's label pattern to match a file.
    labels = workdir / "data" / "demo" / "labeled-data" / "v" / "CollectedData_synth.csv"
    labels.parent.mkdir(parents=True)
    labels.write_text("")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    rows = ["video\tpath\tsession\tcamera"] + [
        f"s1-{name}\t{path}\ts1\t{name}" for name, path in archive.videos.items()
    ]
    (workdir / "config" / "videos.tsv").write_text("\n".join(rows) + "\n")
    views = archive.views.copy()
    views[1, ::4, 0] += 80.0  # the snout 80 px off in every 4th frame of one view
    names = [f"s1-{name}" for name in archive.videos]
    write_views_2d(workdir / "results" / "trajectories" / "demo", names, views, noise_px=0.5)
    return workdir, archive


def test_dry_run_wires_triangulate_to_the_2d_trajectories_and_the_calibration(project):
    workdir, _ = project
    result = snakemake(workdir, "-n", TARGET)
    for rule in ("calibrate", "triangulate", "aggregate", "plan_inference"):
        assert f"rule {rule}:" in result.stdout or f"checkpoint {rule}:" in result.stdout, rule


def test_calibrate_and_triangulate_a_synthetic_session(project):
    workdir, archive = project
    # common.smk finds the sheet's schema beside the Snakefile (workflow.basedir).
    (workdir / "threed-only").mkdir()
    (workdir / "threed-only" / "schemas").symlink_to(REPO / "workflow" / "schemas")
    snakefile = workdir / "threed-only" / "Snakefile"
    snakefile.write_text(THREED_ONLY.format(rules=REPO / "workflow" / "rules"))
    snakemake(workdir, "--snakefile", str(snakefile), TARGET)
    rig = read_calibration(workdir / "results" / "calibration" / "rig1" / "calibration.toml")
    assert rig.names == list(archive.videos)
    assert rig.metadata["error"] < 0.5
    table = pd.read_parquet(workdir / "results" / "trajectories3d" / "demo")
    assert set(table["session"].astype(str)) == {"s1"}
    assert len(table) == len(archive.keypoints) * len(KEYPOINTS)
    points = table.sort_values(
        ["frame", "keypoint"], key=lambda s: s.map(KEYPOINTS.index) if s.name == "keypoint" else s
    )
    estimate = points[["x", "y", "z"]].to_numpy(dtype=float)
    truth = archive.keypoints.reshape(-1, 3)
    aligned = similarity(estimate, truth)(estimate)
    error = np.linalg.norm(aligned - truth, axis=1)
    assert np.nanmedian(error) < 1.0  # mm; 0.5 px noise at about 1 px per mm
    snout = points["keypoint"].to_numpy() == "snout"
    wrong = snout & (points["frame"].to_numpy() % 4 == 0)
    assert (points["n_cameras"].to_numpy()[wrong] == 2).all()  # the 80 px view was left out
    assert (points["n_views"].to_numpy()[wrong] == 3).all()
    metadata = read_metadata3d(workdir / "results" / "trajectories3d" / "demo" / "session=s1" / "part-0.parquet")
    assert metadata["units"] == "mm" and len(metadata["calibration_sha256"]) == 64
    assert [pair["suspected"] for pair in metadata["checks"]["time_offsets"]] == [False] * 3
    assert SKELETON  # the config's skeleton is the synthetic animal's


def test_a_session_with_one_camera_stops_before_any_job(project, tmp_path):
    workdir, archive = project
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text((workdir / "config" / "config.yaml").read_text())
    name, path = next(iter(archive.videos.items()))
    (tmp_path / "config" / "videos.tsv").write_text(f"video\tpath\tsession\tcamera\ns1-{name}\t{path}\ts1\t{name}\n")
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert "session 's1' has one camera" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
