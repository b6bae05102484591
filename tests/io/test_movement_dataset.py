import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from posecore.cli import main
from posecore.errors import InputError
from posecore.io.movement_dataset import load_poses
from posecore.io.trajectories import keypoint_table, read_provenance
from posecore.models import ModelMeta, build_model, save_model

if sys.version_info < (3, 11):
    pytest.skip("movement needs Python 3.11 or newer", allow_module_level=True)

from movement.io import load_poses as movement_loaders
from movement.kinematics import compute_velocity

N_FRAMES, HEIGHT, WIDTH, START = 14, 32, 48, 3
NAMES = ("nose", "ear", "tail")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, encode_h264):
    """`posecore predict` on frames [3, 14) of a generated video, with DeepLabCut-H5 and NWB exports."""
    folder = tmp_path_factory.mktemp("predicted")
    frames = np.random.default_rng(0).integers(0, 255, size=(N_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    video = encode_h264(frames, folder / "clip.mp4")
    torch.manual_seed(0)
    hyperparameters = {"growth_rate": 4, "n_transitions": 1, "n_stacks": 1}
    network = build_model("stacked_densenet", len(NAMES), 3, **hyperparameters).eval()
    meta = ModelMeta("stacked_densenet", hyperparameters, NAMES, (HEIGHT, WIDTH), 3, (0.0,) * 3, (255.0,) * 3, 4)
    save_model(folder / "model.pt", network, meta)
    out = folder / "out"
    argv = ["predict", str(video), "--model", str(folder / "model.pt"), "--out", str(out), "--device", "cpu"]
    torch.set_num_threads(1)
    assert main([*argv, "--quiet", "--start", str(START), "--export", "dlc-h5", "nwb"]) == 0
    return out


def assert_matches_rows(dataset, rows: pd.DataFrame) -> None:
    """Every row's x, y, score sits at its (time, keypoint, individual) in the dataset; times are the rows'."""
    times = np.sort(rows["time_s"].unique())
    np.testing.assert_array_equal(dataset["time"].values, times)
    np.testing.assert_array_equal(dataset["frame"].values, np.sort(rows["frame"].unique()))
    for row in rows.itertuples():
        cell = {"time": row.time_s, "keypoints": str(row.keypoint), "individuals": f"animal{row.instance}"}
        position = dataset["position"].sel(cell).values  # (2,) x, y
        np.testing.assert_array_equal(position, np.array([row.x, row.y], dtype=np.float32).astype(np.float64))
        np.testing.assert_array_equal(dataset["confidence"].sel(cell).values, np.float64(np.float32(row.score)))


def test_a_predicted_file_loads_with_its_rows_times_and_provenance(predicted):
    parquet = predicted / "clip.parquet"
    dataset = load_poses(parquet)
    rows = pd.read_parquet(parquet)
    assert dict(dataset.sizes) == {"time": N_FRAMES - START, "space": 2, "keypoints": 3, "individuals": 1}
    assert list(dataset["keypoints"].values) == list(NAMES) and list(dataset["individuals"].values) == ["animal0"]
    assert list(dataset["space"].values) == ["x", "y"]
    assert_matches_rows(dataset, rows)
    assert dataset["time"].values[0] == pytest.approx(START / 25), "time is the video's, not counted from 0"
    assert dataset.attrs["source_software"] == "posecore" and dataset.attrs["ds_type"] == "poses"
    assert dataset.attrs["fps"] == pytest.approx(25.0) and dataset.attrs["time_unit"] == "seconds"
    assert dataset.attrs["model_hash"] == read_provenance(parquet)["model_hash"]
    # movement's own analysis takes it: velocity along the real time axis.
    velocity = compute_velocity(dataset["position"])
    x = dataset["position"].sel(space="x", keypoints="ear", individuals="animal0").values
    np.testing.assert_allclose(
        velocity.sel(space="x", keypoints="ear", individuals="animal0").values, np.gradient(x, dataset["time"].values)
    )


def test_the_same_numbers_as_movements_own_loaders_on_posecores_exports(predicted):
    ours = load_poses(predicted / "clip.parquet")
    from_dlc = movement_loaders.from_dlc_file(next(predicted.glob("clip_posecore-*.h5")), fps=25)
    from_nwb = movement_loaders.from_nwb_file(predicted / "clip.nwb")
    for theirs in (from_dlc, from_nwb):
        assert sorted(theirs["keypoints"].values) == sorted(NAMES)
        theirs = theirs.sel(keypoints=list(NAMES))  # movement's NWB reader sorts them by name
        np.testing.assert_allclose(theirs["position"].values, ours["position"].values, rtol=1e-6)
        np.testing.assert_allclose(theirs["confidence"].values, ours["confidence"].values, rtol=1e-6)
    # What those paths lose, and why posecore has a loader of its own: the frames' real times.
    assert from_dlc["time"].values[0] == 0.0 and ours["time"].values[0] == pytest.approx(START / 25)


def test_nan_points_and_missing_rows_are_nan(predicted, tmp_path):
    table = pq.read_table(predicted / "clip.parquet")
    rows = table.to_pandas()
    rows.loc[4, ["x", "y"]] = np.nan  # a point posecore has as NaN
    dropped = rows.iloc[7]
    rows = rows.drop(index=7)  # a point posecore has no row for
    path = tmp_path / "clip.parquet"
    rewritten = pa.Table.from_pandas(rows, preserve_index=False).replace_schema_metadata(table.schema.metadata)
    pq.write_table(rewritten, path)
    dataset = load_poses(path)
    nan_row = rows.loc[4]
    cell = {"time": nan_row.time_s, "keypoints": str(nan_row.keypoint), "individuals": "animal0"}
    assert np.isnan(dataset["position"].sel(cell).values).all()
    assert dataset["confidence"].sel(cell).values == pytest.approx(nan_row.score)
    cell = {"time": dropped.time_s, "keypoints": str(dropped.keypoint), "individuals": "animal0"}
    assert np.isnan(dataset["position"].sel(cell).values).all() and np.isnan(dataset["confidence"].sel(cell).values)
    assert int(np.isnan(dataset["position"].values).sum()) == 4, "only those two points, x and y each"


def write_video_partition(archive, video: str, table: pa.Table) -> None:
    folder = archive / f"video={video}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-0.parquet")


def test_an_archive_folder_gives_the_video_asked_for(tmp_path):
    archive = tmp_path / "trajectories" / "demo"
    frames = np.arange(6)
    rng = np.random.default_rng(1)
    tables = {name: keypoint_table(frames, frames / 30, rng.uniform(1, 40, (6, 3, 3)), NAMES) for name in ("a", "b")}
    for name, table in tables.items():
        write_video_partition(archive, name, table)
    with pytest.raises(InputError, match=r"demo: holds the videos \['a', 'b'\]; say which one"):
        load_poses(archive)
    with pytest.raises(InputError, match=r"demo: has no trajectories of video 'c'; it holds \['a', 'b'\]"):
        load_poses(archive, video="c")
    dataset = load_poses(archive, video="b")
    assert dataset.attrs["video"] == "b"
    assert_matches_rows(dataset, tables["b"].to_pandas())
    assert load_poses(archive / "video=a").attrs["video"] == "a"


def test_several_instances_and_variable_frame_times(tmp_path):
    times = np.array([0.0, 0.04, 0.1, 0.13, 0.2])  # a variable-frame-rate video
    frames = np.arange(5)
    rng = np.random.default_rng(2)
    first = keypoint_table(frames, times, rng.uniform(1, 40, (5, 3, 3)), NAMES).to_pandas()
    second = keypoint_table(frames, times, rng.uniform(1, 40, (5, 3, 3)), NAMES).to_pandas().assign(instance=2)
    rows = pd.concat([first, second]).sort_values(["frame", "instance"], kind="stable")
    rows.to_parquet(tmp_path / "two.parquet")
    dataset = load_poses(tmp_path / "two.parquet")
    assert list(dataset["individuals"].values) == ["animal0", "animal2"]
    assert_matches_rows(dataset, rows)
    assert "model_hash" not in dataset.attrs, "a table written by another tool has no provenance"


def test_an_empty_archive_says_what_is_missing(tmp_path):
    archive = tmp_path / "trajectories" / "demo"
    archive.mkdir(parents=True)
    with pytest.raises(InputError, match=r"demo: holds no trajectory files.*aggregate step"):
        load_poses(archive)
    (archive / "video=a").mkdir()
    with pytest.raises(InputError, match=r"video=a: holds no trajectory files \(\*\.parquet\) of video 'a'"):
        load_poses(archive)
    empty = keypoint_table(np.arange(0), np.arange(0.0), np.zeros((0, 3, 3)), NAMES)
    pq.write_table(empty, archive / "video=a" / "part-0.parquet")
    with pytest.raises(InputError, match=r"part-0\.parquet: the trajectory table has no rows"):
        load_poses(archive)
    with pytest.raises(InputError, match=r"nowhere: no such trajectory file or folder"):
        load_poses(tmp_path / "nowhere")
