"""Calibration boards: their geometry, and finding their corners in an image.

Two kinds of board, as DeepLabCut 3D and Anipose use them:

- `checkerboard`: squares_x by squares_y squares, found with OpenCV's `findChessboardCorners`
  and `cornerSubPix` (`findChessboardCornersSB` where that fails). Its (squares_x - 1) x
  (squares_y - 1) inner corners are put in a fixed order from the squares' colours (the corner
  square at the origin is dark), which only works when turning the board by 180 degrees
  changes it: one side must have an even number of squares and the other an odd number (e.g.
  8 x 11). A board that looks the same turned around
  would be matched the wrong way round between cameras, so it is refused.
- `charuco`: a checkerboard with ArUco markers in its light squares (`cv2.aruco`, in the main
  OpenCV package since 4.7, no opencv-contrib), whose corners carry their own ids. `legacy`
  selects the layout of OpenCV before 4.6 (and of boards printed by Anipose or sleap-anipose then),
  which differs from the current one when squares_y is even.

Corner k of either board is at ((k % (squares_x - 1) + 1) * square_mm, (k // (squares_x - 1) + 1)
* square_mm, 0) millimetres in the board's frame, the same numbering as
`cv2.aruco.CharucoBoard.getChessboardCorners`. To add a kind of board: give `Board` its kind and
geometry, `detector()` its detection, and tests/threed/test_boards.py a rendered image of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from posecore.threed.options import from_mapping

BoardKind = Literal["checkerboard", "charuco"]
_KINDS = ("checkerboard", "charuco")
_MARKER_BITS = (4, 5, 6, 7)
_DICTIONARY_SIZES = (50, 100, 250, 1000)

Detection = tuple[np.ndarray, np.ndarray]
"""Corners found in one image: ids int64 (n,) ascending, and pixels float64 (n, 2) (x, y)."""


@dataclass(frozen=True)
class Board:
    """A calibration board's kind and geometry.

    Attributes:
        kind: "checkerboard" or "charuco".
        squares_x: squares along the board's x axis (OpenCV's first board dimension).
        squares_y: squares along its y axis.
        square_mm: side of one square in millimetres: the calibration's unit of length.
        marker_mm: ChArUco only: side of a marker.
        marker_bits: ChArUco only: bits per marker side (4 for DICT_4X4_*).
        dictionary_size: ChArUco only: markers in the ArUco dictionary (50, 100, 250, 1000).
        legacy: ChArUco only: OpenCV's layout before 4.6 (matters when squares_y is even).
    """

    kind: BoardKind
    squares_x: int
    squares_y: int
    square_mm: float
    marker_mm: float = 0.0
    marker_bits: int = 4
    dictionary_size: int = 50
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"board kind must be one of {_KINDS}, got {self.kind!r}")
        if self.squares_x < 3 or self.squares_y < 3:
            raise ValueError(f"a board needs at least 3 x 3 squares, got {self.squares_x} x {self.squares_y}")
        if not self.square_mm > 0:
            raise ValueError(f"square_mm must be positive, got {self.square_mm}")
        if self.kind == "checkerboard" and (self.squares_x + self.squares_y) % 2 == 0:
            raise ValueError(
                f"a {self.squares_x} x {self.squares_y} checkerboard looks the same turned by 180 degrees, so its "
                "corners cannot be matched between cameras: use one with an even number of squares on one side "
                "and an odd number on the other (e.g. 8 x 11), or a ChArUco board"
            )
        if self.kind == "charuco":
            if not 0 < self.marker_mm < self.square_mm:
                raise ValueError(f"marker_mm must be between 0 and square_mm ({self.square_mm}), got {self.marker_mm}")
            if self.marker_bits not in _MARKER_BITS or self.dictionary_size not in _DICTIONARY_SIZES:
                raise ValueError(
                    f"no ArUco dictionary of {self.marker_bits}x{self.marker_bits}-bit markers and size "
                    f"{self.dictionary_size}: bits are one of {_MARKER_BITS}, sizes one of {_DICTIONARY_SIZES}"
                )
            if self.squares_x * self.squares_y // 2 > self.dictionary_size:
                raise ValueError(f"a {self.squares_x} x {self.squares_y} board has more markers than the dictionary")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> Board:
        """The board of a config's `board` mapping; errors name `source` and the bad key."""
        values = {("kind" if key == "type" else key): value for key, value in d.items()}  # the config says "type"
        return from_mapping(cls, values, source, "board")

    @property
    def n_corners(self) -> int:
        """Number of inner corners, (squares_x - 1) * (squares_y - 1)."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def object_points(self) -> np.ndarray:
        """float64 (n_corners, 3) the corners in the board's frame, millimetres, z = 0."""
        k = np.arange(self.n_corners)
        nx = self.squares_x - 1
        return np.stack([(k % nx + 1) * self.square_mm, (k // nx + 1) * self.square_mm, np.zeros(len(k))], axis=1)

    def neighbour_pairs(self) -> np.ndarray:
        """int64 (E, 2) ids of corners one square apart (along x or y): the board's edges."""
        nx, ny = self.squares_x - 1, self.squares_y - 1
        grid = np.arange(self.n_corners).reshape(ny, nx)
        along_x = np.stack([grid[:, :-1].ravel(), grid[:, 1:].ravel()], axis=1)
        along_y = np.stack([grid[:-1, :].ravel(), grid[1:, :].ravel()], axis=1)
        return np.concatenate([along_x, along_y])

    def detector(self) -> Callable[[np.ndarray], Detection]:
        """A function from an image (uint8 (H, W) grey or (H, W, 3) RGB) to the corners found in it."""
        import cv2

        if self.kind == "charuco":
            dictionary = cv2.aruco.getPredefinedDictionary(
                getattr(cv2.aruco, f"DICT_{self.marker_bits}X{self.marker_bits}_{self.dictionary_size}")
            )
            board = cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_mm, self.marker_mm, dictionary)
            board.setLegacyPattern(self.legacy)
            detector = cv2.aruco.CharucoDetector(board)
            return lambda image: _charuco(detector, _grey(image))
        return lambda image: _checkerboard(self, _grey(image))

    def image(self, pixels_per_square: int, margin_squares: float = 0.5) -> np.ndarray:
        """The board drawn as uint8 (H, W) grey, with `margin_squares` of white around it.

        The centre of pixel (x, y) is board point ((x + 0.5) / pixels_per_square - margin, (y + 0.5) /
        pixels_per_square - margin) * square_mm, with the margin rounded to whole pixels.
        """
        import cv2

        margin = round(margin_squares * pixels_per_square)
        size = (self.squares_x * pixels_per_square, self.squares_y * pixels_per_square)
        if self.kind == "charuco":
            dictionary = cv2.aruco.getPredefinedDictionary(
                getattr(cv2.aruco, f"DICT_{self.marker_bits}X{self.marker_bits}_{self.dictionary_size}")
            )
            board = cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_mm, self.marker_mm, dictionary)
            board.setLegacyPattern(self.legacy)
            inner = board.generateImage(size, marginSize=0)
        else:
            ys, xs = np.mgrid[0 : size[1], 0 : size[0]] // pixels_per_square
            inner = np.where((xs + ys) % 2 == 0, 0, 255).astype(np.uint8)
        return np.pad(inner, margin, constant_values=255)


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3:
        image = (image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round()
    return np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))


def _empty() -> Detection:
    return np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.float64)


def _charuco(detector: Any, grey: np.ndarray) -> Detection:
    corners, ids, _, _ = detector.detectBoard(grey)
    if ids is None or len(ids) == 0:
        return _empty()
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    points = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    order = np.argsort(ids, kind="stable")
    return ids[order], points[order]


def _checkerboard(board: Board, grey: np.ndarray) -> Detection:
    import cv2

    nx, ny = board.squares_x - 1, board.squares_y - 1
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(grey, (nx, ny), flags=flags)
    if found:
        # Refine within a window of a third of the smallest spacing between corners (at most 11 px).
        spacing = np.linalg.norm(np.diff(corners.reshape(ny, nx, 2), axis=1), axis=-1).min()
        half = int(np.clip(spacing / 3, 2, 5))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
        corners = cv2.cornerSubPix(grey, corners, (half, half), (-1, -1), criteria)
    else:  # the sector-based detector finds boards the classic one misses (blur, strong distortion)
        found, corners = cv2.findChessboardCornersSB(grey, (nx, ny), flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        return _empty()
    grid = np.asarray(corners, dtype=np.float64).reshape(ny, nx, 2)  # (rows along y, columns along x, 2)
    # Seen from its front, the board's x and y axes turn the way the image's do; a mirrored order is
    # read the other way along x.
    ex, ey = grid[0, -1] - grid[0, 0], grid[-1, 0] - grid[0, 0]
    if ex[0] * ey[1] - ex[1] * ey[0] < 0:
        grid = grid[:, ::-1]
    # The square at the origin is dark: compare the squares the order says are dark with the light ones.
    if _dark_square_contrast(grey, grid) < 0:
        grid = grid[::-1, ::-1]
    return np.arange(nx * ny, dtype=np.int64), grid.reshape(-1, 2)


def _dark_square_contrast(grey: np.ndarray, grid: np.ndarray) -> float:
    """Mean brightness of the inner squares this corner order calls light, minus those it calls dark.

    Inner square (i, j) (between corner columns i, i+1 and rows j, j+1) is board square (i + 1, j + 1),
    dark when i + j is even. Its centre is the mean of its four corners.
    """
    centres = (grid[:-1, :-1] + grid[:-1, 1:] + grid[1:, :-1] + grid[1:, 1:]) / 4  # (ny-1, nx-1, 2)
    x = np.clip(np.rint(centres[..., 0]).astype(int), 0, grey.shape[1] - 1)
    y = np.clip(np.rint(centres[..., 1]).astype(int), 0, grey.shape[0] - 1)
    values = grey[y, x].astype(np.float64)
    j, i = np.indices(values.shape)
    dark = (i + j) % 2 == 0
    return float(values[~dark].mean() - values[dark].mean())
