"""Bad input stops the workflow before any job (`snakemake --dry-run` fails), naming the file or key."""

from __future__ import annotations

import copy

import pytest

from .conftest import snakemake, write_config


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project with one small synthetic video and its labels, never run: dry runs only."""
    from posecore.synth import SynthConfig, make_archive

    workdir = tmp_path_factory.mktemp("bad-input")
    make_archive(workdir / "data" / "demo", SynthConfig(n_videos=1, n_frames=20, n_labeled_per_video=10, seed=1))
    return workdir


VIDEO = ("mouse-000", "data/demo/videos/mouse-000.mp4", False)


def dry_run(project, config, videos=(VIDEO,)):
    write_config(project, config, list(videos))
    result = snakemake(project, "--dry-run", check=False)
    assert not (project / "results").exists() and not (project / "logs").exists(), "a dry run made no file"
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("missing", "/nonexistent/video.mp4", False),
            "videos.tsv (row 3): video 'missing': /nonexistent/video.mp4: no such",
        ),
        (("folder", "data", False), "videos.tsv (row 3): video 'folder': data: a folder, not a video file"),
        (
            ("bad name", "data/demo/videos/mouse-000.mp4", False),
            "videos.tsv (row 3): column video: 'bad name' does not",
        ),
        (
            ("mouse-000", "data/demo/videos/mouse-000.mp4", False),
            "videos.tsv: video name 'mouse-000' is used more than",
        ),
    ],
)
def test_a_bad_row_of_the_video_sheet_is_named_by_the_row_a_spreadsheet_shows(project, demo_config, row, message):
    code, output = dry_run(project, demo_config, [VIDEO, row])
    assert code != 0 and f"config/{message}" in output


def test_a_label_pattern_that_matches_no_file_is_named(project, demo_config):
    config = copy.deepcopy(demo_config)
    config["dataset"]["labels"] = [
        "data/demo/labeled-data/*/CollectedData_synth.csv",
        "labels/round-1/labeled-data/*/CollectedData_*.h5",
    ]
    code, output = dry_run(project, config)
    assert code != 0
    assert "(key dataset.labels[1]): 'labels/round-1/labeled-data/*/CollectedData_*.h5' matches no label file" in output


@pytest.mark.parametrize(
    ("split", "named"),
    [
        ({"val_fraction": 0}, "val_fraction"),
        ({"test_fraction": 0}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction must leave frames to train on"),
    ],
)
def test_a_split_that_would_fail_late_stops_before_any_job(project, demo_config, split, named):
    config = copy.deepcopy(demo_config)
    config["dataset"]["split"] = {**config["dataset"]["split"], **split}
    code, output = dry_run(project, config)
    assert code != 0 and named in output


def test_a_sheet_without_videos_still_trains_and_evaluates(project, demo_config):
    (project / "config").mkdir(exist_ok=True)
    code, output = dry_run(project, demo_config, [])
    assert code == 0, output[-3000:]
    assert "rule train:" in output and "rule evaluate:" in output and "rule probe_video:" not in output
