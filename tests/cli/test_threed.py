import cv2
import numpy as np
import pandas as pd
import yaml

from posecore.cli import main
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.synth.rig import board_poses, make_rig, pixel_rays, render_board
from posecore.synth.rig_archive import SMALL_BOARD, write_views_2d


def test_calibrate_then_triangulate_from_the_command_line(tmp_path, capsys):
    rig = make_rig(2, width=640, height=512, seed=2)
    for camera in rig.cameras:
        rays = pixel_rays(camera)
        for f, pose in enumerate(board_poses(10, SMALL_BOARD, np.random.default_rng(0))):
            (tmp_path / camera.name).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / camera.name / f"{f}.png"), render_board(camera, SMALL_BOARD, pose, rays=rays))
    board = {"type": "charuco", **{k: v for k, v in SMALL_BOARD.__dict__.items() if k != "kind"}}
    cameras = {c.name: str(tmp_path / c.name / "*.png") for c in rig.cameras}
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump({"board": board, "cameras": cameras}))
    assert main(["calibrate", str(tmp_path / "rig.yaml"), str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    rms = float(printed.split("RMS reprojection error ")[1].split(" px")[0])
    assert rms < 0.5 and "board edges triangulated back" in printed
    animal = simulate_3d(30, 30.0, np.random.default_rng(0)).keypoints
    files = write_views_2d(tmp_path / "2d", rig.names, project_views(rig, animal), noise_px=0.3)
    views = [f"--view={name}={path}" for name, path in files.items()]
    out = tmp_path / "s.parquet"
    assert main(["triangulate", str(tmp_path / "out" / "calibration.toml"), str(out), *views]) == 0
    assert f"{len(animal) * 6} of {len(animal) * 6} points triangulated" in capsys.readouterr().out
    table = pd.read_parquet(out)
    assert table["reprojection_px"].median() < 1.0
    # Distances between keypoints do not depend on the world frame: they match the truth's.
    snout = table[table["keypoint"] == "snout"][["x", "y", "z"]].to_numpy(float)
    tail = table[table["keypoint"] == "tailtip"][["x", "y", "z"]].to_numpy(float)
    true = np.linalg.norm(animal[:, 0] - animal[:, 5], axis=1)
    assert np.median(np.abs(np.linalg.norm(snout - tail, axis=1) - true)) < 1.0


def test_a_rig_file_without_cameras_is_named(tmp_path, capsys):
    (tmp_path / "rig.yaml").write_text("board: {type: charuco}\n")
    assert main(["calibrate", str(tmp_path / "rig.yaml"), str(tmp_path / "out")]) == 2
    assert "rig.yaml: a rig needs `board` and `cameras`" in capsys.readouterr().err
