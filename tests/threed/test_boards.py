import numpy as np
import pytest

from posecore.errors import InputError
from posecore.synth.rig import look_at, render_board
from posecore.threed.boards import Board
from posecore.threed.camera import Camera, rotation_vector


def _view(board: Board, tilt_deg: float = 20.0, spin_deg: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """A board at the origin seen from 600 mm above, slightly from the side: image and exact corners."""
    rotation, translation = look_at(np.array([150.0, -100.0, 600.0]), np.zeros(3))
    camera = Camera("top", (640, 512), [[700.0, 0, 319.5], [0, 700.0, 255.5], [0, 0, 1]], [-0.1, 0.02, 0, 0, 0],
                    rotation, translation)  # fmt: skip
    spin, tilt = np.radians(spin_deg), np.radians(tilt_deg)
    rz = np.array([[np.cos(spin), -np.sin(spin), 0], [np.sin(spin), np.cos(spin), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    r = rx @ rz @ np.diag([1.0, -1.0, -1.0])  # the board's front faces up
    middle = np.array([board.squares_x, board.squares_y, 0]) * board.square_mm / 2
    pose = np.concatenate([rotation_vector(r), -r @ middle])
    corners = camera.project(board.object_points @ r.T + pose[3:])
    return render_board(camera, board, pose, noise_std=2.0, seed=1), corners


@pytest.mark.parametrize(
    "board",
    [
        Board("charuco", 7, 5, 30.0, 22.0, 4, 50),
        Board("charuco", 5, 6, 30.0, 22.0, 4, 50, legacy=True),  # even squares_y: the legacy layout differs
        Board("checkerboard", 8, 5, 25.0),
    ],
    ids=["charuco", "charuco-legacy", "checkerboard"],
)
def test_corners_are_found_with_their_ids_to_a_fraction_of_a_pixel(board):
    image, truth = _view(board)
    ids, points = board.detector()(image)
    assert len(ids) >= 0.9 * board.n_corners
    error = np.linalg.norm(points - truth[ids], axis=1)
    assert np.median(error) < 0.15 and error.max() < 0.6


def test_a_legacy_board_needs_the_legacy_layout():
    legacy = Board("charuco", 5, 6, 30.0, 22.0, 4, 50, legacy=True)
    image, truth = _view(legacy)
    current = Board("charuco", 5, 6, 30.0, 22.0, 4, 50, legacy=False)
    ids, points = current.detector()(image)
    right = np.linalg.norm(points - truth[ids], axis=1) < 1.0 if len(ids) else np.zeros(0, bool)
    assert right.sum() < 0.5 * legacy.n_corners


def test_checkerboard_corners_keep_their_order_when_the_board_is_turned_around():
    board = Board("checkerboard", 8, 5, 25.0)
    for spin in (10.0, 190.0, 100.0, 280.0):
        image, truth = _view(board, spin_deg=spin)
        ids, points = board.detector()(image)
        assert len(ids) == board.n_corners, spin
        assert np.linalg.norm(points - truth[ids], axis=1).max() < 0.6, spin


def test_bad_boards_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="looks the same turned by 180 degrees"):
        Board("checkerboard", 7, 9, 25.0)
    with pytest.raises(ValueError, match="marker_mm must be between 0 and square_mm"):
        Board("charuco", 8, 11, 24.0, 30.0, 4, 1000)
    with pytest.raises(ValueError, match="no ArUco dictionary of 4x4-bit markers and size 60"):
        Board("charuco", 8, 11, 24.0, 18.0, 4, 60)
    with pytest.raises(InputError, match=r"config: threed.rigs.a.board: unknown board keys \['size'\]"):
        Board.from_dict({"type": "charuco", "size": 3}, "config: threed.rigs.a.board")


def test_neighbour_pairs_are_one_square_apart():
    board = Board("charuco", 8, 11, 24.0, 18.75, 4, 1000)
    pairs = board.neighbour_pairs()
    lengths = np.linalg.norm(board.object_points[pairs[:, 0]] - board.object_points[pairs[:, 1]], axis=1)
    np.testing.assert_allclose(lengths, 24.0)
    assert len(pairs) == 7 * 9 + 6 * 10  # 7 x 10 corners
