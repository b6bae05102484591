from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from posecore import __version__
from posecore.errors import InputError
from posecore.qc import build_report


class Page(HTMLParser):
    """What a reader of the page sees: tables (by class) as rows of cell text, images, attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.attributes += [(tag, k, v) for k, v in attrs.items()]
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("class", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _build(inputs, out: Path, **changes) -> Page:
    arguments = {
        "model_name": "m1",
        "metrics_json": inputs.metrics_json,
        "predictions_parquet": inputs.predictions_parquet,
        "training_csv": inputs.training_csv,
        "trajectories_dir": inputs.trajectories_dir,
        "probe_jsons": inputs.probe_jsons,
        "score_threshold": inputs.threshold,
    } | changes
    build_report(out, **arguments)
    return Page(out.read_text(encoding="utf-8"))


def _rows(page: Page, table: str) -> dict[str, dict[str, str]]:
    header, *rows = page.tables[table]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_page_is_self_contained_with_one_inline_png_per_figure(built_report):
    _, out = built_report
    page = Page(out.read_text(encoding="utf-8"))
    for tag, name, value in page.attributes:
        if name in ("src", "href"):
            assert not value.startswith(("http://", "https://", "//")), (tag, value[:80])
    assert not [a for a in page.attributes if a[0] in ("script", "link")]
    # error bar chart + training curves + score histograms + one trajectory figure per video with trajectories
    assert len(page.images) == 3 + 2
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(image["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) < 400_000
    assert out.stat().st_size < 2_000_000
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left behind


def test_header_names_model_and_version(built_report):
    _, out = built_report
    text = " ".join(Page(out.read_text(encoding="utf-8")).text)
    assert "dlc-openfield-hourglass" in text
    assert f"posecore {__version__}" in text


def test_error_table_equals_metrics_and_labeled_counts(built_report):
    inputs, out = built_report
    rows = _rows(Page(out.read_text(encoding="utf-8")), "errors")
    assert list(rows) == [*inputs.keypoints, "all keypoints"]
    metrics = inputs.metrics
    for keypoint in inputs.keypoints:
        for column, key in (("RMSE (px)", "rmse_px"), ("median (px)", "median_px"), ("p90 (px)", "p90_px")):
            expected = metrics[key][keypoint]
            cell = rows[keypoint][column]
            if expected is None:
                assert cell == "–"
            else:
                assert float(cell) == pytest.approx(expected, abs=0.005)
        assert int(rows[keypoint]["n labeled"]) == inputs.labeled[keypoint]
    assert float(rows["all keypoints"]["RMSE (px)"]) == pytest.approx(metrics["rmse_px_all"], abs=0.005)
    assert int(rows["all keypoints"]["n labeled"]) == sum(inputs.labeled.values())


def test_video_table_names_every_video_and_flags_missing_trajectories(built_report):
    inputs, out = built_report
    page = Page(out.read_text(encoding="utf-8"))
    rows = _rows(page, "videos")
    assert sorted(rows) == ["007", "corrupt_c", "mouse_a"]
    assert rows["corrupt_c"]["status"] == "no trajectories"
    assert rows["corrupt_c"]["frames with trajectories"] == "–"
    assert rows["mouse_a"]["status"] == "ok"
    assert rows["007"]["status"] == "incomplete (80 of 100 frames)"
    assert rows["mouse_a"]["size"] == "640×480"
    assert rows["mouse_a"]["VFR"] == "no"
    for name, expected in inputs.videos.items():
        assert int(rows[name]["frames probed"]) == expected["probed"]
        assert int(rows[name]["frames with trajectories"]) == expected["frames"]
        assert float(rows[name]["median score"]) == pytest.approx(expected["median_score"], abs=0.0005)
        low = rows[name][f"points with score < {inputs.threshold:g}"]
        assert float(low.rstrip(" %")) == pytest.approx(100 * expected["fraction_low"], abs=0.05)
    assert rows["007"]["instances"] == "2"
    text = " ".join(page.text)
    for keypoint in inputs.keypoints:
        assert keypoint in text
    alts = [image["alt"] for image in page.images]
    assert "trajectories of 007" in alts and "trajectories of mouse_a" in alts


def test_missing_training_csv_and_percentiles_still_build(make_qc_inputs, tmp_path):
    inputs = make_qc_inputs(tmp_path / "inputs", with_median=False)
    page = _build(inputs, tmp_path / "report.html", training_csv=None)
    assert len(page.images) == 2 + 2  # no training curves
    assert "No training log was given." in " ".join(page.text)
    header = page.tables["errors"][0]
    assert header == ["keypoint", "RMSE (px)", "n labeled"]


def test_bad_metrics_names_file_and_key_and_writes_nothing(qc_inputs, tmp_path):
    metrics = json.loads(qc_inputs.metrics_json.read_text())
    del metrics["rmse_px"]["tailbase"]
    qc_inputs.metrics_json.write_text(json.dumps(metrics))
    out = tmp_path / "report.html"
    with pytest.raises(InputError, match=r"metrics\.json \(key rmse_px\): no value for keypoint 'tailbase'"):
        _build(qc_inputs, out)
    assert not out.exists()


def test_trajectory_file_missing_a_column_is_named(qc_inputs, tmp_path):
    import pyarrow.parquet as pq

    path = qc_inputs.trajectories_dir / "video=mouse_a" / "part-1.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["score"]), path)
    with pytest.raises(InputError, match=r"video=mouse_a/part-1\.parquet: missing column\(s\) score"):
        _build(qc_inputs, tmp_path / "report.html")


def test_bad_probe_value_is_named(qc_inputs, tmp_path):
    probe = qc_inputs.probe_jsons[0]
    probe.write_text(json.dumps(json.loads(probe.read_text()) | {"fps": "thirty"}))
    with pytest.raises(InputError, match=rf"{probe.name} \(key fps\): expected int or float, got 'thirty'"):
        _build(qc_inputs, tmp_path / "report.html")
