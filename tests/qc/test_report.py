"""The page (posecore.qc.report): header, sections in order, failures listed, figures as files with captions."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from posecore import __version__
from posecore.errors import InputError
from posecore.evaluate import score_predictions, write_evaluation
from posecore.io.dataset import TrainingDataset, write_dataset
from posecore.io.video import read_frame_array
from posecore.qc.html import ReportFigure, Section
from posecore.qc.report import build_report, media_of, render_page, write_media

CAPTION_TEMPLATE = Path(__file__).parents[2] / "workflow" / "report" / "qc_figure.rst"


def _caption(name: str, model: str = "demo") -> str:
    """The caption Snakemake's --report gives a file of the figures folder (its Jinja env, then RST)."""
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(name=name, model=model), config={"qc": {"score_threshold": 0.5}}
    )
    text = Environment(trim_blocks=True, lstrip_blocks=True).from_string(CAPTION_TEMPLATE.read_text())
    return publish_parts(text.render(snakemake=snakemake), writer="html")["body"]


def _archive_only(inputs, out: Path, config, **changes):
    arguments = {
        "model_name": "demo",
        "trajectories_dir": inputs.trajectories_dir,
        "probe_jsons": inputs.probe_jsons,
        "videos": inputs.videos,
        "logs_dir": inputs.logs_dir,
        "config": config,
    } | changes
    return build_report(out / "report.html", **arguments)


def test_header_counts_videos_and_the_failed_one_is_listed(archive_report, page):
    html, _, _ = archive_report
    shown = page(html.read_text(encoding="utf-8"))
    text = shown.plain
    assert "QC report: demo" in shown.headings[0]
    assert f"posecore {__version__}" in text
    assert "videos: 3 (1 complete, 1 incomplete, 1 failed)" in text
    assert [h for h in shown.headings if h.startswith("h2")] == ["h2:Archive"]
    assert list(shown.rows("failures")) == ["mouse-002"]
    assert shown.rows("archive")["mouse-002"]["status"] == "failed"


def test_page_is_self_contained(archive_report, page):
    html, _, _ = archive_report
    shown = page(html.read_text(encoding="utf-8"))
    for tag, name, value in shown.attributes:
        if name in ("src", "href"):
            assert value.startswith("data:"), (tag, value[:80])
    assert not [a for a in shown.attributes if a[0] in ("script", "link", "iframe")]
    assert html.stat().st_size < 3_000_000
    assert sorted(p.name for p in html.parent.iterdir()) == ["figures", "report.html"], "no temporary files left"


def test_figures_folder_holds_exactly_the_page_figures_and_clips(archive_report, page):
    html, figures, _ = archive_report
    shown = page(html.read_text(encoding="utf-8"))
    inline = {base64.b64decode(image["src"].split(",", 1)[1]) for image in shown.images}
    inline |= {base64.b64decode(video["src"].split(",", 1)[1]) for video in shown.videos}
    files = {path.read_bytes() for path in figures.iterdir()}
    assert files == inline
    assert {p.suffix for p in figures.iterdir()} == {".png", ".mp4"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in figures.glob("*.png"))


def test_every_figure_file_gets_its_own_caption_in_snakemakes_report(archive_report):
    _, figures, _ = archive_report
    names = [p.stem for p in figures.iterdir()]
    names += ["labels-positions", "training-curves", "training-errors", "training-worst-frames"]
    captions = {name: _caption(name) for name in names}
    for name, caption in captions.items():
        assert "its caption in report.html" not in caption, f"{name} gets the generic caption"
        if "--" in name:
            assert f"<strong>{name.split('--')[1]}</strong>" in caption
    assert len(set(captions.values())) == len(captions)
    assert "its caption in report.html" in _caption("something-new")


def test_a_report_builds_when_every_video_failed(archive_inputs, archive_config, tmp_path, page):
    qc = _archive_only(
        archive_inputs,
        tmp_path,
        archive_config,
        trajectories_dir=tmp_path / "no-trajectories",
        figures_dir=tmp_path / "figures",
    )
    assert [v.status for v in qc.videos] == ["failed"] * 3
    shown = page((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert "videos: 3 (0 complete, 0 incomplete, 3 failed)" in shown.plain
    failures = shown.rows("failures")
    assert "VideoError" in failures["mouse-002"]["error"]
    assert failures["mouse-000"]["error"].startswith("no trajectories, and no error in its logs")
    assert list((tmp_path / "figures").iterdir()) == []


def test_a_bad_probe_is_named_and_nothing_is_written(archive_inputs, archive_config, tmp_path):
    bad = tmp_path / "videos" / "mouse-000.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(json.loads(archive_inputs.probe_jsons[0].read_text()) | {"fps": "thirty"}))
    with pytest.raises(InputError, match=r"mouse-000\.json \(key fps\): expected int or float, got 'thirty'"):
        _archive_only(archive_inputs, tmp_path, archive_config, probe_jsons=[bad], figures_dir=tmp_path / "figures")
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "figures").exists()


def _evaluated_dataset(inputs, root: Path) -> tuple[Path, Path, Path, Path]:
    """A dataset of 12 frames of the archive's good videos, a 1-px-off evaluation of its test frames, a log."""
    images, keypoints = [], []
    for name in ("mouse-000", "mouse-001"):
        frames = np.arange(0, 60, 10)
        images.append(read_frame_array(inputs.video_paths[name], frames))
        truth = pq.read_table(inputs.root / "synth" / "ground_truth" / f"{name}.parquet").to_pandas()
        truth = truth[truth["frame"].isin(frames)]
        keypoints.append(truth[["x", "y"]].to_numpy(np.float32).reshape(len(frames), len(inputs.keypoints), 2))
    dataset = TrainingDataset(
        images=np.concatenate(images),
        keypoints=np.concatenate(keypoints),
        split=np.array((["train"] * 3 + ["val"] + ["test"] * 2) * 2, dtype=object),
        keypoint_names=inputs.keypoints,
        source_video=np.repeat(["mouse-000", "mouse-001"], 6).astype(object),
        source_frame=np.tile(np.arange(0, 60, 10), 2),
        source_path=np.repeat([str(inputs.video_paths["mouse-000"]), str(inputs.video_paths["mouse-001"])], 6),
    )
    write_dataset(dataset, root / "dataset.h5")
    test = np.flatnonzero(dataset.split == "test")
    labels = dataset.keypoints[test].astype(np.float64)  # (T, K, 2)
    scores = np.full((*labels.shape[:2], 1), 0.9)  # (T, K, 1)
    predictions = np.concatenate([labels + np.array([1.0, 0.0]), scores], axis=-1)  # (T, K, 3): 1 px off in x
    result = score_predictions(predictions, labels, inputs.keypoints, frames=test, split="test")
    metrics, table = write_evaluation(result, root / "eval")
    log = pd.DataFrame({"step": [0, 10, 19], "train/loss": [1.0, 0.5, np.nan], "val/loss": [np.nan, np.nan, 0.4]})
    log.to_csv(root / "metrics.csv", index=False)
    return root / "dataset.h5", metrics, table, root / "metrics.csv"


def test_full_report_has_labels_training_and_archive_in_that_order(archive_inputs, archive_config, tmp_path, page):
    dataset, metrics, predictions, curves = _evaluated_dataset(archive_inputs, tmp_path)
    config = dataclasses.replace(archive_config, n_worst=1)
    _archive_only(
        archive_inputs,
        tmp_path,
        config,
        dataset_h5=dataset,
        metrics_json=metrics,
        predictions_parquet=predictions,
        training_csv=curves,
        figures_dir=tmp_path / "figures",
    )
    shown = page((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert [h for h in shown.headings if h.startswith("h2")] == ["h2:Labels", "h2:Training", "h2:Archive"]
    files = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"labels-positions.png", "training-curves.png", "archive-frames--mouse-001.png"} <= files
    assert "archive-clip--mouse-001.mp4" in files


def test_evaluation_without_its_dataset_is_refused(archive_inputs, archive_config, tmp_path):
    with pytest.raises(ValueError, match="needs dataset_h5"):
        _archive_only(
            archive_inputs,
            tmp_path,
            archive_config,
            metrics_json=tmp_path / "m.json",
            predictions_parquet=tmp_path / "p.parquet",
        )


def test_render_page_needs_no_files(page):
    sections = [Section("Labels", "<p>labels body</p>"), Section("Archive <&>", "<p>archive body</p>")]
    built = datetime(2024, 5, 6, 7, 8, tzinfo=timezone.utc)
    html = render_page("m<1>", sections, video_counts={"complete": 2, "failed": 1}, built=built)
    shown = page(html)
    assert shown.headings == ["h1:QC report: m<1>", "h2:Labels", "h2:Archive <&>"]
    text = shown.plain
    assert "built 2024-05-06 07:08 UTC" in text and "videos: 3 (2 complete, 1 failed)" in text


def test_two_figures_with_one_name_are_refused():
    figure = ReportFigure("same", b"\x89PNG", "c", "a")
    with pytest.raises(ValueError, match=r"same\.png"):
        media_of([Section("A", "", (figure,)), Section("B", "", (figure,))])


def test_write_media_replaces_the_folder_as_a_whole(tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    (folder / "stale.png").write_bytes(b"old")
    written = write_media([Section("A", "", (ReportFigure("new", b"\x89PNG new", "c", "a"),))], folder)
    assert written == [folder / "new.png"]
    assert [p.name for p in folder.iterdir()] == ["new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures"], "no temporary folder left"
