import cv2
import numpy as np
import pytest

from posecore.errors import InputError
from posecore.synth.media import encode_video
from posecore.synth.rig import board_poses, make_rig, pixel_rays, render_board
from posecore.synth.rig_archive import SMALL_BOARD
from posecore.threed.detection import choose_frames, detect, natural_key


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """Two cameras' images of the board in 6 poses (PNG files, and as arrays)."""
    root = tmp_path_factory.mktemp("boards")
    rig = make_rig(2, width=640, height=512, seed=2)
    poses = board_poses(6, SMALL_BOARD, np.random.default_rng(0))
    images, files = {}, {}
    for camera in rig.cameras:
        rays = pixel_rays(camera)
        images[camera.name] = [render_board(camera, SMALL_BOARD, p, rays=rays) for p in poses]
        files[camera.name] = []
        for f, image in enumerate(images[camera.name]):
            path = root / camera.name / f"img{f}.png"
            path.parent.mkdir(exist_ok=True)
            cv2.imwrite(str(path), image)
            files[camera.name].append(path)
    return rig, poses, images, files


def test_images_give_the_corners_of_every_frame(boards):
    rig, poses, _, files = boards
    detections = detect(SMALL_BOARD, {name: list(reversed(paths)) for name, paths in files.items()})
    assert detections.cameras == ("cam0", "cam1") and detections.sizes == ((640, 512), (640, 512))
    assert detections.frames == tuple(f"img{f}.png" for f in range(6))  # natural order, whatever was given
    points = np.einsum("fij,nj->fni", _rotations(poses), SMALL_BOARD.object_points) + poses[:, None, 3:]
    for c, camera in enumerate(rig.cameras):
        truth = camera.project(points)
        found = np.isfinite(detections.corners[c, ..., 0])
        assert found.sum() > 0.5 * found.size
        assert np.median(np.linalg.norm(detections.corners[c][found] - truth[found], axis=1)) < 0.2


def test_videos_give_chosen_frames(boards, tmp_path):
    _, _, images, _ = boards
    videos = {}
    for name, frames in images.items():
        videos[name] = tmp_path / f"{name}.mp4"
        rgb = [np.repeat(f[..., None], 3, axis=2) for f in frames for _ in range(3)]  # each pose for 3 frames
        encode_video(rgb, videos[name], 640, 512, 30.0, crf=12)
    detections = detect(SMALL_BOARD, videos, max_frames=4, max_candidates=18)
    assert len(detections.frames) == 4 and all(label.startswith("frame ") for label in detections.frames)
    assert detections.seen(8).any(axis=0).all()


def test_mismatched_frame_counts_are_an_error_naming_the_counts(boards, tmp_path):
    _, _, images, files = boards
    with pytest.raises(InputError, match=r"mismatched frame counts: the cameras have \{'cam0': 6, 'cam1': 5\}"):
        detect(SMALL_BOARD, {"cam0": files["cam0"], "cam1": files["cam1"][:5]})
    for name, n in (("cam0", 6), ("cam1", 4)):
        frames = [np.repeat(f[..., None], 3, axis=2) for f in images[name][:n]]
        encode_video(frames, tmp_path / f"{name}.mp4", 640, 512, 30.0, crf=23)
    with pytest.raises(InputError, match=r"calibration videos have \{'cam0': 6, 'cam1': 4\} frames"):
        detect(SMALL_BOARD, {name: tmp_path / f"{name}.mp4" for name in ("cam0", "cam1")})
    with pytest.raises(InputError, match=r"cameras \['cam0'\] are calibrated from videos and \['cam1'\] from images"):
        detect(SMALL_BOARD, {"cam0": tmp_path / "cam0.mp4", "cam1": files["cam1"]})


def test_an_unreadable_image_is_named(boards, tmp_path):
    _, _, _, files = boards
    broken = tmp_path / "img5.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"img5.png: camera 'cam1': not a readable image"):
        detect(SMALL_BOARD, {"cam0": files["cam0"], "cam1": [*files["cam1"][:5], broken]})


def test_choose_frames_spreads_the_board_and_repeats():
    from posecore.threed.detection import Detections

    corners = np.full((1, 100, 4, 2), np.nan)
    rng = np.random.default_rng(0)
    centres = np.where(np.arange(100)[:, None] < 90, [100.0, 100.0], [500.0, 400.0])  # 90 frames in one place
    corners[0] = centres[:, None] + rng.normal(0, 1, (100, 4, 2)) + np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    detections = Detections(("a",), ((640, 480),), tuple(map(str, range(100))), corners, (("a.mp4",),))
    chosen = choose_frames(detections, 10, min_corners=4)
    assert len(chosen) == 10 and (chosen >= 90).any() and (chosen < 90).any()
    np.testing.assert_array_equal(chosen, choose_frames(detections, 10, min_corners=4))


def test_natural_order():
    assert sorted(["img10.png", "img2.png", "img1.png"], key=natural_key) == ["img1.png", "img2.png", "img10.png"]


def _rotations(poses):
    from posecore.threed.camera import rodrigues

    return rodrigues(poses[:, :3])
