import re

import numpy as np
import pandas as pd
import pytest
import torch

from posecore.cli import main
from posecore.io.trajectories import read_provenance
from posecore.models import ModelMeta, build_model, save_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_FRAMES, HEIGHT, WIDTH = 12, 32, 48


@pytest.fixture
def video(tmp_path, encode_h264):
    path = tmp_path / "clip.mp4"
    frames = np.random.default_rng(0).integers(0, 255, size=(N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    return encode_h264(frames, path)


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    hyperparameters = {"growth_rate": 4, "n_transitions": 1, "n_stacks": 1}
    network = build_model("stacked_densenet", 2, 3, **hyperparameters).eval()
    meta = ModelMeta(
        "stacked_densenet", hyperparameters, ("nose", "tail"), (HEIGHT, WIDTH), 3, (0.0,) * 3, (255.0,) * 3, 4
    )
    meta = ModelMeta(**{**meta.__dict__, "skeleton": ((0, 1),)})
    save_model(tmp_path / "model.pt", network, meta)
    return tmp_path / "model.pt"


def test_predict_writes_trajectories_filtered_columns_and_exports(video, model, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(video), "--model", str(model), "--out", str(out), "--device", "cpu", "--quiet"]
    assert main(["predict", *argv, "--filter", "median", "--window", "3", "--export", "dlc-h5", "dlc-csv", "nwb"]) == 0
    table = pd.read_parquet(out / "clip.parquet")
    assert len(table) == N_FRAMES * 2 and table.frame.max() == N_FRAMES - 1
    assert {"x", "y", "score", "x_filtered", "y_filtered"} <= set(table.columns)
    assert read_provenance(out / "clip.parquet")["config"]["filter"] == "median"
    h5 = next(out.glob("clip_posecore-*.h5"))
    dlc = pd.read_hdf(h5)
    assert dlc.shape == (N_FRAMES, 6) and list(dlc.columns.get_level_values("bodyparts").unique()) == ["nose", "tail"]
    assert next(out.glob("clip_posecore-*.csv")).exists() and (out / "clip.nwb").exists()
    printed = capsys.readouterr().out
    assert f"{N_FRAMES} frames" in printed and "clip.nwb" in printed


def test_predict_refuses_a_model_with_other_keypoints(video, model, tmp_path, capsys):
    argv = ["predict", str(video), "--model", str(model), "--keypoints", "nose,ear", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert re.search(rf"posecore: error: {re.escape(str(model))}.*missing \['ear'\]", capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def _main_error(argv, capsys):
    """posecore's own entry point on `argv`: (exit code, stderr)."""
    from posecore.cli import main

    try:
        code = main(["predict", *argv])
    except SystemExit as exit_:  # argparse refuses a value before anything runs
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--filter", "savgol", "--window", "4"], "--filter: window must be odd and at least 3, got 4"),
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["--decoders", "two"], "argument --decoders: 'two' is not a whole number"),
    ],
)
def test_bad_arguments_stop_before_any_frame_is_read(video, model, tmp_path, capsys, monkeypatch, extra, message):
    def never(*args, **kwargs):
        raise AssertionError("inference ran")

    monkeypatch.setattr("posecore.infer.single.infer_video", never)
    code, err = _main_error([str(video), "--model", str(model), "--out", str(tmp_path / "o"), *extra], capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_paths_name_the_file_and_what_is_wrong(video, model, tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    code, err = _main_error([str(video), "--model", str(model), "--out", str(tmp_path / "taken")], capsys)
    assert code == 2 and f"{tmp_path / 'taken'}: --out must be a folder" in err
    code, err = _main_error([str(tmp_path), "--model", str(model)], capsys)
    assert code == 2 and f"{tmp_path}: is a folder, not a video file" in err
    (tmp_path / "model.txt").write_text("not a model")
    code, err = _main_error([str(video), "--model", str(tmp_path / "model.txt"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "model.txt: not a posecore exported model" in err
    assert "weights_only" not in err, "never advise loading untrusted pickles"
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_top_down_model_tracks_the_videos_animals_and_exports_the_tracks(two_blobs_video, tmp_path, capsys):
    video, centres, model = two_blobs_video
    out = tmp_path / "out"
    argv = [str(video), "--model", str(model), "--out", str(out), "--device", "cpu", "--quiet", "--decoders", "2"]
    assert main(["predict", *argv, "--export", "slp", "dlc-h5"]) == 0
    table = pd.read_parquet(out / "blobs.parquet")
    assert set(table["track"].astype(str)) == {"track_0", "track_1"} and len(table) == len(centres) * 2 * 2
    assert read_provenance(out / "blobs.parquet")["config"]["count"] == "known"
    assert (out / "blobs.slp").is_file()
    dlc = pd.read_hdf(next(out.glob("blobs_posecore-*.h5")))
    assert list(dlc.columns.get_level_values("individuals").unique()) == ["track_0", "track_1"]
    assert f"{len(centres)} frames, 2 tracks" in capsys.readouterr().out


def test_a_top_down_model_refuses_a_filter_naming_the_model(two_blobs_video, tmp_path, capsys):
    video, _, model = two_blobs_video
    code, err = _main_error(
        [str(video), "--model", str(model), "--out", str(tmp_path / "o"), "--filter", "median"], capsys
    )
    assert code == 2 and re.search(r"topdown\.pt: a top-down model's tracks are not filtered", err)
    assert not (tmp_path / "o").exists()
