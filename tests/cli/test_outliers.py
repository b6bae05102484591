import numpy as np
import pandas as pd
import pytest

from posecore.cli import main
from posecore.cli.outliers import CONFIG_OPTIONS
from posecore.io.trajectories import keypoint_table, write_atomic
from posecore.outliers import OutlierConfig

N_FRAMES, HEIGHT, WIDTH = 40, 32, 48


@pytest.fixture
def inputs(tmp_path, encode_h264):
    video = tmp_path / "clip.mp4"
    frames = np.random.default_rng(0).integers(0, 255, size=(N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    encode_h264(frames, video)
    peaks = np.zeros((N_FRAMES, 2, 3))
    peaks[:, 0, :2], peaks[:, 1, :2], peaks[..., 2] = (10.0, 12.0), (30.0, 20.0), 0.95
    peaks[8, 1, 2] = 0.3  # low score
    peaks[25, 0, :2] = (40.0, 12.0)  # a 30 px glitch: frames 25 and 26 jump
    trajectories = tmp_path / "clip.parquet"
    write_atomic(keypoint_table(np.arange(N_FRAMES), np.arange(N_FRAMES) / 25, peaks, ["head", "tail"]), trajectories)
    return trajectories, video


def test_outliers_command_writes_the_refinement_folder(inputs, tmp_path, capsys):
    trajectories, video = inputs
    out = tmp_path / "refine"
    code = main(["outliers", str(trajectories), str(video), str(out), "--n-frames", "5", "--min-gap", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 outlier frames" in printed and "frame     25" in printed
    picks = pd.read_csv(out / "outliers.tsv", sep="\t")
    assert list(picks["frame"]) == [8, 25]  # severities 0.4 and 1/3; frame 26 is within 3 frames of 25
    machine = pd.read_hdf(out / "labeled-data" / "clip" / "machinelabels-iter0.h5")
    assert list(machine.index.get_level_values(2)) == ["img00008.png", "img00025.png"]
    assert set(machine.columns.get_level_values("scorer")) == {"posecore"}  # no provenance: the plain name
    assert (out / "labeled-data" / "clip" / "img00025.png").is_file() and (out / "config.yaml").is_file()


def test_bad_input_ends_with_a_message_naming_it(inputs, tmp_path, capsys):
    _, video = inputs
    assert main(["outliers", str(tmp_path / "missing.parquet"), str(video), str(tmp_path / "o")]) == 2
    assert "missing.parquet: no such trajectory file" in capsys.readouterr().err
    trajectories, _ = inputs
    assert main(["outliers", str(trajectories), str(video), str(tmp_path / "o"), "--score-stat", "median"]) == 2
    assert "unknown score_stat 'median'" in capsys.readouterr().err


def test_option_defaults_are_the_config_defaults():
    default = OutlierConfig()
    for flag, _, text in CONFIG_OPTIONS:
        value = getattr(default, flag[2:].replace("-", "_"))
        assert text.endswith(f"(default {value:g})" if not isinstance(value, str) else f"(default {value})"), flag
