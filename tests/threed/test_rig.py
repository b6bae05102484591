import numpy as np
import pytest

from posecore.errors import InputError
from posecore.threed import rig as rig_module
from posecore.threed.rig import read_calibration, write_calibration

# A calibration.toml as aniposelib's CameraGroup.dump writes it (the `toml` package's layout:
# [cam_N] tables with name, size [width, height], matrix, distortions, rotation (Rodrigues),
# translation, `fisheye = true` for a FisheyeCamera, and a [metadata] table), with eleven cameras
# so that cam_10 must come after cam_9, not after cam_1.
ANIPOSE_CAMERA = """[cam_{index}]
name = "{name}"
size = [ 1280, 1024,]
matrix = [ [ {focal}, 0.0, 639.5,], [ 0.0, {focal}, 511.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ {distortions},]
rotation = [ -0.01620434170631696, 0.00243953661952865, -0.0008482754607133058,]
translation = [ 0.11101046010648573, -5.942766688873288, {tz},]
{extra}
"""


def _anipose_file(path, n=11):
    parts = []
    for i in range(n):
        fisheye = i == 3
        parts.append(
            ANIPOSE_CAMERA.format(
                index=i,
                name=f"cam{i}",
                focal=700.0 + i,
                distortions="0.1, -0.02, 0.001, 0.002" if fisheye else "-0.2853406116327607, 0.0, 0.0, 0.0, 0.0",
                tz=-122.0 - i,
                extra="fisheye = true" if fisheye else "",
            )
        )
    path.write_text("".join(parts) + "[metadata]\nadjusted = true\nerror = 0.41\n")
    return path


def test_reads_an_anipose_calibration_in_camera_order(tmp_path):
    rig = read_calibration(_anipose_file(tmp_path / "calibration.toml"))
    assert rig.names == [f"cam{i}" for i in range(11)]
    assert [c.focal for c in rig.cameras] == [700.0 + i for i in range(11)]
    assert rig.cameras[3].fisheye and len(rig.cameras[3].distortion) == 4
    assert rig.cameras[10].size == (1280, 1024)
    assert rig.cameras[10].translation[2] == -132.0
    assert rig.metadata == {"adjusted": True, "error": 0.41}


def test_round_trip_keeps_every_number_and_is_byte_identical(tmp_path):
    rig = read_calibration(_anipose_file(tmp_path / "anipose.toml"))
    rig.metadata["board_region"] = {"cam0": [[1.5, 2.0], [100.0, 2.0], [50.0, 80.25]]}
    write_calibration(rig, tmp_path / "ours.toml")
    again = read_calibration(tmp_path / "ours.toml")
    for a, b in zip(rig.cameras, again.cameras, strict=True):
        assert a.name == b.name and a.size == b.size and a.fisheye == b.fisheye
        for field in ("matrix", "distortion", "rotation", "translation"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(again.board_region("cam0"), [[1.5, 2.0], [100.0, 2.0], [50.0, 80.25]])
    assert again.board_region("cam1") is None
    write_calibration(again, tmp_path / "twice.toml")
    assert (tmp_path / "twice.toml").read_bytes() == (tmp_path / "ours.toml").read_bytes()


def test_our_file_has_anipose_layout(tmp_path, calibration):
    write_calibration(calibration.rig, tmp_path / "calibration.toml")
    tables = rig_module.tomllib.loads((tmp_path / "calibration.toml").read_text())
    assert sorted(tables) == ["cam_0", "cam_1", "cam_2", "cam_3", "metadata"]
    cam = tables["cam_1"]
    assert set(cam) == {"name", "size", "matrix", "distortions", "rotation", "translation"}
    assert cam["size"] == [1280, 1024] and len(cam["distortions"]) == 5 and np.shape(cam["matrix"]) == (3, 3)
    assert tables["metadata"]["units"] == "mm" and tables["metadata"]["adjusted"] is True


def test_a_damaged_calibration_names_the_file_and_the_table(tmp_path):
    path = _anipose_file(tmp_path / "calibration.toml", n=2)
    path.write_text(path.read_text().replace('name = "cam1"\n', ""))
    with pytest.raises(InputError, match=r"calibration.toml \(\[cam_1\]\): missing keys \['name'\]"):
        read_calibration(path)
    path.write_text("[metadata]\nerror = 1.0\n")
    with pytest.raises(InputError, match="no camera tables"):
        read_calibration(path)
    path.write_text("[cam_0\n")
    with pytest.raises(InputError, match="not a TOML file"):
        read_calibration(path)
    with pytest.raises(InputError, match="no such calibration file"):
        read_calibration(tmp_path / "missing.toml")
