"""The report's 3D section, on a synthetic rig's calibration and two sessions (one with a camera out of sync)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from posecore.qc.report import build_report
from posecore.qc.threed import ThreeDInputs
from posecore.synth.animal import KEYPOINTS, SKELETON
from posecore.synth.animal3d import project_views, simulate_3d
from posecore.synth.rig import SYNTH_BOARD, board_views, make_rig
from posecore.synth.rig_archive import write_views_2d
from posecore.threed.calibrate import calibrate
from posecore.threed.detection import Detections
from posecore.threed.files import write_outputs
from posecore.threed.options import CalibrationConfig, TriangulationConfig
from posecore.threed.session import View, run_session


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("threed-qc")
    rig = make_rig(3, seed=6)
    views = board_views(rig, SYNTH_BOARD, 20, noise_px=0.2, seed=6)
    corners = views.corners.copy()
    frame = int(np.argmax(np.isfinite(corners[1, :, :, 0]).sum(axis=1) > 20))
    seen = np.flatnonzero(np.isfinite(corners[1, frame, :, 0]))[:5]
    corners[1, frame, seen] += 12.0  # five corners of one view 17 px off: dropped as outliers
    detections = Detections(tuple(rig.names), tuple(c.size for c in rig.cameras), tuple(map(str, range(20))),
                            corners, tuple((n,) for n in rig.names))  # fmt: skip
    calibration = calibrate(SYNTH_BOARD, detections, CalibrationConfig())
    toml, corners_file = root / "calibration.toml", root / "corners.parquet"
    write_outputs(calibration, toml, corners_file, root / "summary.json")
    animal = simulate_3d(90, 30.0, np.random.default_rng(1)).keypoints
    sessions = {}
    for session in ("synced", "shifted"):
        views2d = project_views(rig, animal)
        if session == "shifted":
            views2d[2] = np.roll(views2d[2], -4, axis=0)  # cam2's frame t shows the session's t + 4
        files = write_views_2d(root / session, rig.names, views2d)
        out = root / "3d" / f"session={session}" / "part-0.parquet"
        session_views = [View(c.name, f"{session}-{c.name}", files[c.name], 0, c.size) for c in rig.cameras]
        run_session(toml, session_views, session, TriangulationConfig(), SKELETON, out)
        sessions[session] = out
    html = root / "report.html"
    inputs = ThreeDInputs({"arena": (toml, corners_file)}, sessions, SKELETON)
    build_report(html, model_name="m", trajectories_dir=root / "none", figures_dir=root / "figures", threed=inputs)
    return html.read_text(), json.loads((root / "summary.json").read_text()), root


def test_the_calibration_is_shown_with_its_true_rms_and_board_edges(report):
    page, summary, _ = report
    assert "<h2>3D</h2>" in page and "Calibration of rig arena" in page
    assert f"RMS reprojection error <b>{summary['rms_all_px']:.3f} px</b>" in page
    assert f"({summary['rms_px']:.3f} px over the {summary['corners']} kept; {summary['dropped']} dropped" in page
    assert summary["dropped"] >= 5
    assert f"median error <b>{summary['edge_error_median_mm']:.3f} mm</b>" in page
    cam1 = re.search(r"<tr><td>cam1</td>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td>(.*?)</td>", cam1)
    assert int(cells[2]) >= 5 and cells[3] == f"{summary['cameras']['cam1']['rms_all_px']:.3f}"


def test_sessions_show_keypoints_and_the_camera_out_of_sync(report):
    page, _, _ = report
    synced = page[page.index("Session synced") : page.index("Session shifted")]
    shifted = page[page.index("Session shifted") :]
    assert "No camera pair fits better shifted in time." in synced
    assert "2 camera pairs fit better shifted in time" in shifted
    rows = re.findall(r"<tr><td>(cam\d / cam\d)</td><td>(-?\d+)</td>.*?</tr>", shifted)
    assert ("cam0 / cam2", "-4") in rows and ("cam1 / cam2", "-4") in rows  # cam2's t - 4 shows the others' t
    for keypoint in KEYPOINTS:
        assert f"<tr><td>{keypoint}</td>" in synced
    assert "Frames where views disagree most" in shifted


def test_figures_are_inline_and_written_as_files(report):
    page, _, root = report

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.sources = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.sources.append(dict(attrs)["src"])

    parser = Images()
    parser.feed(page)
    assert parser.sources and all(src.startswith("data:image/png;base64,") for src in parser.sources)
    names = sorted(p.name for p in (root / "figures").iterdir())
    expected = ["threed-arena-board.png", "threed-arena-residuals.png", "threed-arena-rig.png"]
    expected += [f"threed-{s}-{k}.png" for s in ("shifted", "synced") for k in ("poses", "time")]
    assert names == sorted(expected)
