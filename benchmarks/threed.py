"""Multi-camera 3D (issue 21): calibration and triangulation against their goals.

    PYTHONPATH=. .venv/bin/python benchmarks/threed.py [--parts synthetic robust refine real rendered]
        [--data ../shared/data] [--frames 60]

Every figure of the issue's measured goals is printed, with the goal beside it:

- synthetic: the synthetic rig (`posecore.synth.rig`, 4 cameras of 1280 x 1024, 8 x 11 ChArUco
  board of 24 mm squares in `--frames` poses), corners with Gaussian noise of 0.2 px. RMS
  reprojection error; after a similarity alignment (fitted on the board's corners) the camera
  centres, orientations and focal lengths against the truth; the board's corners triangulated
  back (from the exact projections: the calibration's own error; from the noisy corners: with the
  detection noise); the calibration's time (detections given) on this machine; and whether two
  runs write the same calibration.toml.
- robust: the synthetic animal (`posecore.synth.animal3d`, 600 frames) in the 4 cameras with 2 px
  noise, and the same with 10% gross errors in one view (half 50-200 px away, half a left/right
  swap): median 3D error with and without the gross errors (goal: ratio at most 1.2), and the
  plain DLT over all views for comparison.
- refine: the spatiotemporal refinement (`posecore.threed.refine`) on the same data: median and
  90th percentile 3D error with and without it.
- real: ../shared/data/sleap-anipose-4cam: ChArUco 8 x 11, 24 mm, 21 images per camera. RMS over
  all corners and per camera, the board's edges triangulated back (also calibrating on half of
  the images and checking on the other half, both ways), two runs identical, and the proofread 2D
  labels of the four views triangulated through the workflow's code path (`run_session`):
  reprojection error median and 90th percentile, per keypoint, and how many labels lie outside the
  region each camera saw the board in. Also the three cameras that have calibration videos,
  calibrated from the videos (frames chosen automatically).
- rendered (slow): the synthetic rig's board rendered as 1280 x 1024 images (30 poses), found by the
  ChArUco detector and calibrated: the whole stage from images, with its time.

Timings are of this machine as it was (shared, 2 cores): rerun on a quiet machine for final figures.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posecore.synth.animal import KEYPOINTS, SKELETON, SWAP_PAIRS
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.synth.rig import SYNTH_BOARD, board_views, make_rig, pixel_rays, render_board
from posecore.threed.boards import Board
from posecore.threed.calibrate import board_edge_errors, calibrate
from posecore.threed.compare import rig_errors, similarity
from posecore.threed.detection import Detections, detect
from posecore.threed.files import write_outputs
from posecore.threed.options import CalibrationConfig, RefineConfig, TriangulationConfig
from posecore.threed.refine import refine
from posecore.threed.rig import read_calibration, write_calibration
from posecore.threed.triangulate import triangulate, triangulate_linear

REPO = Path(__file__).resolve().parents[1]
REAL = "sleap-anipose-4cam"
REAL_BOARD = Board("charuco", 8, 11, 24.0, 18.75, 4, 1000)
REAL_CAMERAS = ("back", "mid", "side", "top")


def check(value: float, goal: float, text: str, unit: str = "", digits: int = 3) -> None:
    """Print a figure, its goal (at most `goal`) and whether it is met."""
    verdict = "ok" if value <= goal else "MISSED"
    print(f"  {text}: {value:.{digits}f}{unit} (goal <= {goal:g}{unit}: {verdict})")


def perfect_detections(rig, corners: np.ndarray) -> Detections:
    return Detections(tuple(rig.names), tuple(c.size for c in rig.cameras), tuple(map(str, range(corners.shape[1]))),
                      corners, tuple((n,) for n in rig.names))  # fmt: skip


def toml_hash(calibration) -> str:
    with tempfile.TemporaryDirectory() as folder:
        write_calibration(calibration.rig, Path(folder) / "c.toml")
        return hashlib.sha256((Path(folder) / "c.toml").read_bytes()).hexdigest()[:16]


def synthetic(n_frames: int) -> None:
    print(f"synthetic rig: 4 cameras 1280x1024, {n_frames} board poses, corner noise 0.2 px")
    rig = make_rig(4, seed=0)
    views = board_views(rig, SYNTH_BOARD, n_frames, noise_px=0.2, seed=0)
    detections = perfect_detections(rig, views.corners)
    started = time.perf_counter()
    result = calibrate(SYNTH_BOARD, detections, CalibrationConfig())
    seconds = time.perf_counter() - started
    summary = result.summary
    check(summary["rms_all_px"], 0.31, "RMS reprojection error, all corners", " px")
    transform = similarity(result.board_points().reshape(-1, 3), views.points().reshape(-1, 3))
    print(f"  similarity scale (calibration mm per true mm): {transform.scale:.6f}")
    errors = rig_errors(result.rig, rig, transform)
    for name, e in errors.items():
        print(f"  {name}: centre {e['centre_mm']:.3f} mm, orientation {e['angle_deg']:.4f} deg, "
              f"focal {100 * e['focal_rel']:+.4f} %")  # fmt: skip
    check(max(e["centre_mm"] for e in errors.values()), 3.0, "worst camera centre", " mm")
    check(max(e["angle_deg"] for e in errors.values()), 0.2, "worst camera orientation", " deg", 4)
    check(100 * max(abs(e["focal_rel"]) for e in errors.values()), 0.3, "worst focal length", " %", 4)
    truth = views.points().reshape(-1, 3)
    exact = triangulate(result.rig, views.truth.reshape(4, -1, 2)).points
    error = np.linalg.norm(transform(exact) - truth, axis=1)
    error = error[np.isfinite(error)]
    check(float(np.max(error)), 0.1, "board corners from their exact projections, worst", " mm")
    noisy = triangulate(result.rig, views.corners.reshape(4, -1, 2)).points
    error = np.linalg.norm(transform(noisy) - truth, axis=1)
    error = error[np.isfinite(error)]
    print(f"  board corners from the noisy corners (0.2 px): median {np.median(error):.3f} mm, "
          f"90th percentile {np.percentile(error, 90):.3f} mm")  # fmt: skip
    median, p90 = summary["edge_error_median_mm"], summary["edge_error_p90_mm"]
    print(f"  board edges (24 mm) triangulated back from the noisy corners: median {median:.3f} mm, p90 {p90:.3f} mm")
    check(seconds, 60.0, "calibration time (detections given, this machine)", " s", 1)
    again = calibrate(SYNTH_BOARD, detections, CalibrationConfig())
    same = toml_hash(result) == toml_hash(again)
    print(f"  two runs write the same calibration.toml: {same} ({toml_hash(result)})")


def animal_views(rig, n_frames: int = 600, seed: int = 1):
    rng = np.random.default_rng(seed)
    truth = simulate_3d(n_frames, 30.0, rng).keypoints  # (T, K, 3)
    views = project_views(rig, truth)  # (C, T, K, 2)
    noisy = views + rng.normal(0, 2.0, views.shape)
    bad = noisy.copy()
    t_count, k_count = truth.shape[:2]
    gross = rng.uniform(size=(t_count, k_count)) < 0.10
    shifted = gross & (rng.uniform(size=gross.shape) < 0.5)
    swapped = gross & ~shifted
    angle = rng.uniform(0, 2 * np.pi, gross.shape)
    distance = rng.uniform(50, 200, gross.shape)
    offset = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * distance[..., None]
    order = np.arange(k_count)
    for a, b in SWAP_PAIRS:
        order[[KEYPOINTS.index(a), KEYPOINTS.index(b)]] = [KEYPOINTS.index(b), KEYPOINTS.index(a)]
    view = 1
    bad[view] = np.where(shifted[..., None], noisy[view] + offset, bad[view])
    bad[view] = np.where(swapped[..., None], noisy[view][:, order], bad[view])
    return truth, noisy, bad, gross


def robust() -> None:
    print("robust triangulation: synthetic animal, 600 frames, 4 cameras, 2 px noise; 10% gross errors in one view")
    rig = make_rig(4, seed=0)
    truth, noisy, bad, gross = animal_views(rig)
    c = len(rig.cameras)
    flat_truth = truth.reshape(-1, 3)

    def errors(pixels: np.ndarray, **options) -> np.ndarray:
        return np.linalg.norm(triangulate(rig, pixels.reshape(c, -1, 2), **options).points - flat_truth, axis=1)

    clean, corrupted = errors(noisy), errors(bad)
    print(f"  median 3D error without gross errors {np.nanmedian(clean):.3f} mm, with {np.nanmedian(corrupted):.3f} mm")
    check(float(np.nanmedian(corrupted) / np.nanmedian(clean)), 1.2, "ratio of the medians", "", 3)
    rays = rig.undistort(bad.reshape(c, -1, 2))
    plain = np.linalg.norm(triangulate_linear(rig.projections, rays, np.ones(rays.shape[:2])) - flat_truth, axis=1)
    g = gross.ravel()
    print(
        f"  on the points with a gross error: robust median {np.nanmedian(corrupted[g]):.3f} mm, "
        f"plain DLT over all views {np.nanmedian(plain[g]):.3f} mm (plain DLT overall median {np.nanmedian(plain):.3f})"
    )


def refinement() -> None:
    print("spatiotemporal refinement (posecore.threed.refine, default weights), same synthetic data")
    rig = make_rig(4, seed=0)
    truth, noisy, bad, _ = animal_views(rig)
    c, t, k = noisy.shape[:3]
    edges = [(KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in SKELETON]
    for label, pixels in (("without gross errors", noisy), ("with gross errors", bad)):
        result = triangulate(rig, pixels.reshape(c, -1, 2))
        points = result.points.reshape(t, k, 3)
        weights = result.used.reshape(c, t, k).astype(float)
        started = time.perf_counter()
        refined = refine(rig, points, pixels, weights, edges, RefineConfig())
        seconds = time.perf_counter() - started
        before = np.linalg.norm(points - truth, axis=-1)
        after = np.linalg.norm(refined - truth, axis=-1)
        medians = f"median {np.nanmedian(before):.3f} -> {np.nanmedian(after):.3f} mm"
        p90s = f"90th percentile {np.nanpercentile(before, 90):.3f} -> {np.nanpercentile(after, 90):.3f} mm"
        print(f"  {label}: {medians}, {p90s} ({seconds:.1f} s)")


def real(data: Path) -> None:
    import h5py

    root = data / REAL
    print(f"real data: {root} (ChArUco 8x11, 24 mm squares, 21 synchronised images per camera)")
    sources = {name: sorted(glob.glob(str(root / name / "calibration_images" / "*.jpg"))) for name in REAL_CAMERAS}
    started = time.perf_counter()
    detections = detect(REAL_BOARD, sources)
    found = time.perf_counter() - started
    started = time.perf_counter()
    result = calibrate(REAL_BOARD, detections, CalibrationConfig())
    seconds = time.perf_counter() - started
    s = result.summary
    print(f"  all 4 cameras in one rig: {result.rig.names}; detection {found:.1f} s, calibration {seconds:.1f} s")
    check(s["rms_all_px"], 0.5, f"RMS reprojection error over all {s['corners'] + s['dropped']} corners", " px")
    print(f"  RMS over the {s['corners']} corners kept: {s['rms_px']:.3f} px ({s['dropped']} dropped as outliers)")
    for name, cam in s["cameras"].items():
        check(
            cam["rms_all_px"],
            0.75,
            f"{name}: RMS all corners ({cam['rms_px']:.3f} kept, {cam['dropped']} dropped)",
            " px",
        )
    check(s["edge_error_median_mm"], 0.15, f"board edges triangulated back, median of {s['edges']}", " mm")
    check(s["edge_error_p90_mm"], 0.3, "board edges triangulated back, 90th percentile", " mm")
    n = len(detections.frames)
    for label, fit, test in (
        ("even -> odd", range(0, n, 2), range(1, n, 2)),
        ("odd -> even", range(1, n, 2), range(0, n, 2)),
    ):
        half = calibrate(REAL_BOARD, detections.select(np.array(fit)), CalibrationConfig())
        edges = board_edge_errors(half.rig, REAL_BOARD, detections.select(np.array(test)).corners)
        check(float(np.median(edges)), 0.15, f"calibrated on {label} images, edges of the others: median", " mm")
        check(float(np.percentile(edges, 90)), 0.3, f"calibrated on {label} images, edges of the others: p90", " mm")
    again = calibrate(REAL_BOARD, detect(REAL_BOARD, sources), CalibrationConfig())
    same = toml_hash(result) == toml_hash(again)
    print(f"  two runs (detection and calibration) write the same calibration.toml: {same}")
    with tempfile.TemporaryDirectory() as folder:
        labels(root, result, Path(folder), h5py)
    videos = {
        name: root / name / "calibration_images" / f"minimal_session-{name}-calibration.mp4"
        for name in ("back", "mid", "top")
    }
    started = time.perf_counter()
    from_videos = calibrate(REAL_BOARD, detect(REAL_BOARD, videos), CalibrationConfig())
    v = from_videos.summary
    print(f"  back, mid, top from their calibration videos ({len(from_videos.detections.frames)} frames chosen, "
          f"{time.perf_counter() - started:.1f} s): RMS {v['rms_all_px']:.3f} px all corners, edges median "
          f"{v['edge_error_median_mm']:.3f} mm, p90 {v['edge_error_p90_mm']:.3f} mm")  # fmt: skip


def labels(root: Path, calibration, folder: Path, h5py) -> None:
    """The proofread labels of the four views, as 2D trajectory files, triangulated by `run_session`."""
    import pandas as pd

    from posecore.io.trajectories import Provenance, keypoint_table, write_atomic
    from posecore.threed.session import View, inside_region, run_session

    toml = folder / "calibration.toml"
    write_outputs(calibration, toml, folder / "corners.parquet", folder / "summary.json")
    rig = read_calibration(toml)
    views = []
    for name in REAL_CAMERAS:
        with h5py.File(root / name / f"minimal_{name}_proofread.analysis.h5", "r") as f:
            tracks = f["tracks"][0]  # (2, K, T)
            names = [n.decode() for n in f["node_names"][:]]
        peaks = np.transpose(tracks, (2, 1, 0))  # (T, K, 2)
        peaks = np.concatenate([peaks, np.where(np.isfinite(peaks[..., :1]), 1.0, np.nan)], axis=-1)
        frames = np.arange(len(peaks))
        path = folder / f"video={name}" / "part-0.parquet"
        write_atomic(keypoint_table(frames, frames / 30.0, peaks, names), path, Provenance("labels", {}, name, 0, 0.0))
        outside = ~inside_region(rig.board_region(name), peaks[..., :2]) & np.isfinite(peaks[..., 0])
        print(f"  {name}: {int(outside.sum())} of {int(np.isfinite(peaks[..., 0]).sum())} labels lie outside the "
              "region the board covered")  # fmt: skip
        views.append(View(name, name, path, 0, rig.camera(name).size))
    for threshold in (20.0, 1e9):
        out = folder / f"3d-{threshold:g}" / "part-0.parquet"
        config = TriangulationConfig(min_score=0.0, threshold_px=threshold)
        table = run_session(toml, views, "minimal", config, [], out).to_pandas()
        ok = table[table["n_cameras"] >= 2]
        label = "default threshold_px 20" if threshold < 1e6 else "every view (no view left out)"
        print(
            f"  proofread labels triangulated, {label}: {len(ok)} points, mean cameras {ok['n_cameras'].mean():.2f}, "
            f"{(table['outside_board'] & (table['n_cameras'] >= 2)).mean():.1%} use a view outside the board region"
        )
        check(float(ok["reprojection_px"].median()), 8.0, "  reprojection error, median", " px", 2)
        check(float(ok["reprojection_px"].quantile(0.9)), 20.0, "  reprojection error, 90th percentile", " px", 2)
        per = ok.groupby("keypoint", observed=True)["reprojection_px"].agg(["median", lambda s: s.quantile(0.9)])
        print("    per keypoint (median / p90 px): " + ", ".join(
            f"{k} {m:.1f}/{p:.1f}" for k, (m, p) in per.iterrows()))  # fmt: skip
    del pd


def rendered() -> None:
    print("rendered board images: synthetic rig, 4 cameras 1280x1024, 30 poses, ChArUco detector, then calibration")
    rig = make_rig(4, seed=0)
    views = board_views(rig, SYNTH_BOARD, 30, noise_px=0.0, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        import cv2

        sources = {}
        for c, camera in enumerate(rig.cameras):
            rays = pixel_rays(camera)
            sources[camera.name] = []
            for f, pose in enumerate(views.poses):
                path = Path(folder) / camera.name / f"img{f:02d}.png"
                path.parent.mkdir(exist_ok=True)
                cv2.imwrite(str(path), render_board(camera, SYNTH_BOARD, pose, seed=100 * c + f, rays=rays))
                sources[camera.name].append(path)
        started = time.perf_counter()
        detections = detect(SYNTH_BOARD, sources)
        found = time.perf_counter() - started
        result = calibrate(SYNTH_BOARD, detections, CalibrationConfig())
        seconds = time.perf_counter() - started
    seen = np.isfinite(detections.corners[..., 0]) & np.isfinite(views.truth[..., 0])
    error = np.linalg.norm(detections.corners[seen] - views.truth[seen], axis=1)
    print(f"  detector error against the exact corners: median {np.median(error):.3f} px, 90th percentile "
          f"{np.percentile(error, 90):.3f} px, {int(seen.sum())} corners")  # fmt: skip
    transform = similarity(result.board_points().reshape(-1, 3), views.points().reshape(-1, 3))
    errors = rig_errors(result.rig, rig, transform)
    centre = max(e["centre_mm"] for e in errors.values())
    angle = max(e["angle_deg"] for e in errors.values())
    focal = 100 * max(abs(e["focal_rel"]) for e in errors.values())
    rms = result.summary["rms_all_px"]
    print(f"  RMS {rms:.3f} px; worst centre {centre:.3f} mm, orientation {angle:.4f} deg, focal {focal:.4f} %")
    check(seconds, 60.0, f"detection ({found:.1f} s) and calibration, this machine", " s", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["synthetic", "robust", "refine", "real"],
                        choices=["synthetic", "robust", "refine", "real", "rendered"])  # fmt: skip
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--frames", type=int, default=60, help="board poses of the synthetic rig")
    args = parser.parse_args()
    import cv2

    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}")
    for part in args.parts:
        if part == "synthetic":
            synthetic(args.frames)
        elif part == "robust":
            robust()
        elif part == "refine":
            refinement()
        elif part == "real":
            if (args.data / REAL).exists():
                real(args.data)
            else:
                print(f"real data: {args.data / REAL} not found, skipped")
        elif part == "rendered":
            rendered()


if __name__ == "__main__":
    main()
