import numpy as np
import pandas as pd
import pytest

from posecore.errors import InputError
from posecore.synth.animal import KEYPOINTS, SKELETON
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.synth.rig_archive import write_views_2d
from posecore.threed.options import TriangulationConfig
from posecore.threed.rig import Rig, write_calibration
from posecore.threed.session import View, inside_region, run_session
from posecore.threed.trajectories import SCHEMA, read_metadata3d

N_FRAMES = 90


@pytest.fixture(scope="module")
def animal():
    return simulate_3d(N_FRAMES, 30.0, np.random.default_rng(4)).keypoints


def _views(tmp_path, rig, animal, *, extra=None, offsets=None, noise=0.5, keypoints=KEYPOINTS):
    """2D trajectory files of each camera (the true projections plus noise); `extra[c]` frames recorded
    before the session's first frame (copies of frame 0)."""
    files = write_views_2d(
        tmp_path, rig.names, project_views(rig, animal), noise_px=noise, lead=extra, keypoints=keypoints
    )
    return [View(c.name, f"s-{c.name}", files[c.name], (offsets or {}).get(c.name, 0), c.size) for c in rig.cameras]


def _run(tmp_path, rig, views, config=None):
    write_calibration(rig, tmp_path / "calibration.toml")
    out = tmp_path / "3d" / "session=s" / "part-0.parquet"
    run_session(tmp_path / "calibration.toml", views, "s", config or TriangulationConfig(), SKELETON, out)
    return pd.read_parquet(out), read_metadata3d(out)


def test_a_session_is_triangulated_into_millimetres(tmp_path, true_rig, animal):
    rig = true_rig.subset(["cam0", "cam1", "cam3"])
    table, metadata = _run(tmp_path, rig, _views(tmp_path, rig, animal))
    assert list(table.columns) == [f.name for f in SCHEMA]
    assert len(table) == N_FRAMES * len(KEYPOINTS)
    truth = animal.reshape(-1, 3)
    error = np.linalg.norm(table[["x", "y", "z"]].to_numpy(float) - truth, axis=1)
    assert np.median(error) < 0.5  # 0.5 px of noise, about 0.6 mm per px at this distance
    assert (table["n_cameras"] == 3).all() and (table["cameras"] == "cam0+cam1+cam3").all()
    assert table["reprojection_px"].median() < 1.0 and np.allclose(table["score"], 0.9)
    assert metadata["units"] == "mm" and metadata["trajectories2d"]["cam0"]["provenance"]["model_hash"] == "synthetic"
    assert not any(pair["suspected"] for pair in metadata["checks"]["time_offsets"])


def test_frame_offsets_align_the_views_and_a_missing_one_is_suspected(tmp_path, true_rig, animal):
    rig = true_rig.subset(["cam0", "cam1", "cam2"])
    aligned, _ = _run(tmp_path / "a", rig, _views(tmp_path / "a", rig, animal, extra={"cam2": 3}, offsets={"cam2": 3}))
    truth = animal.reshape(-1, 3)
    assert np.median(np.linalg.norm(aligned[["x", "y", "z"]].to_numpy(float) - truth, axis=1)) < 0.5
    # The same files with every offset 0 (cam2 three frames behind, its file three frames longer)...
    views = _views(tmp_path / "b", rig, animal, extra={"cam2": 3})
    with pytest.raises(InputError, match=r"mismatched frame counts.*'cam0': 90, 'cam1': 90, 'cam2': 93"):
        _run(tmp_path / "b", rig, views)
    # ... and with cam0's offset declared but cam2's wrong, the shift shows in the checks.
    views = _views(tmp_path / "c", rig, animal, extra={"cam2": 3}, offsets={"cam2": 0, "cam0": 0, "cam1": 0})
    views = [View(v.camera, v.video, v.trajectories, 1 if v.camera == "cam2" else 0, v.size) for v in views]
    _, metadata = _run(tmp_path / "c", rig, views)
    suspected = {tuple(p["cameras"]): p["best_shift"] for p in metadata["checks"]["time_offsets"] if p["suspected"]}
    assert suspected == {("cam0", "cam2"): 2, ("cam1", "cam2"): 2}


def test_a_calibration_of_another_rig_is_refused_before_triangulating(tmp_path, true_rig, animal):
    rig = true_rig.subset(["cam0", "cam1"])
    views = _views(tmp_path, rig, animal)
    other = Rig((true_rig.camera("cam0"), true_rig.camera("cam2")))
    with pytest.raises(
        InputError, match=r"calibration.toml: the calibration has cameras \['cam0', 'cam2'\], with no camera \['cam1'\]"
    ):
        _run(tmp_path, other, views)
    small = [View(v.camera, v.video, v.trajectories, 0, (640, 512)) for v in views]
    with pytest.raises(
        InputError, match=r"camera 'cam0' was calibrated at 1280x1024 pixels, its video s-cam0 is 640x512"
    ):
        _run(tmp_path, rig, small)


def test_views_of_different_models_are_refused(tmp_path, true_rig, animal):
    rig = true_rig.subset(["cam0", "cam1"])
    views = _views(tmp_path, rig, animal)
    views[1:] = _views(tmp_path / "other", rig.subset(["cam1"]), animal, keypoints=tuple(k.upper() for k in KEYPOINTS))
    with pytest.raises(InputError, match=r"camera 'cam1' has keypoints \['SNOUT'"):
        _run(tmp_path, rig, views)


def test_points_outside_the_board_region_are_flagged(tmp_path, true_rig, animal):
    rig = true_rig.subset(["cam0", "cam1"])
    views = _views(tmp_path, rig, animal)
    cam0 = pd.read_parquet(views[0].trajectories)
    middle = float(cam0["x"].median())
    # cam0's board region: the image left of the animal's median x (counter-clockwise in x, y).
    region = [[0.0, 0.0], [middle, 0.0], [middle, 1023.0], [0.0, 1023.0]]
    table, _ = _run(tmp_path, Rig(rig.cameras, {"board_region": {"cam0": region}}), views)
    np.testing.assert_array_equal(table["outside_board"].to_numpy(), cam0["x"].to_numpy() > middle)


def test_inside_region_of_a_counter_clockwise_polygon():
    square = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]])[::-1]  # counter-clockwise in (x, y)
    points = np.array([[5.0, 5.0], [15.0, 5.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(inside_region(square, points), [True, False, True])
    np.testing.assert_array_equal(inside_region(None, points), [True, True, True])
