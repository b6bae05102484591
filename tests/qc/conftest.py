"""A tiny fabricated archive for the QC report, with its problems planted where the tests know them.

Three synthetic videos of 60 frames (`posecore.synth`), laid out as the workflow leaves them:

- mouse-000: trajectories of every frame, from the exact ground truth (score 0.9), except that
  the snout scores 0.1 in frames 20-29 (a 10-frame gap) and the tail tip is 60 px off in frame
  40 only (a jump there and one back in frame 41); inference jobs of 1.5 s and 2.5 s made it.
- mouse-001: trajectories of frames 0-49 only (incomplete: 60 probed), the tail base missing
  (NaN) in frames 5-7.
- mouse-002: failed: its video is truncated, so its probe records the error (a real traceback
  in its log), and it has no trajectories.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posecore.infer.archive import write_record
from posecore.infer.plan import Shard
from posecore.infer.shards import ShardResult
from posecore.io.video import probe_to_json
from posecore.qc.archive import ArchiveConfig
from posecore.synth import KEYPOINTS, SynthConfig, make_archive, truncate_video

MODEL = "demo"
N_FRAMES = 60
JUMP_PX = 60.0
CONFIG = ArchiveConfig(score_threshold=0.5, clip_seconds=1.0, n_worst=2, n_samples=0, n_panels=4)
"""Thresholds of the tests: 1 s stretches (30 frames), the two videos with trajectories shown."""


@dataclass(frozen=True)
class ArchiveInputs:
    """Where the fabricated archive's files are, as the workflow lays them out."""

    root: Path
    videos: list[str]
    video_paths: dict[str, Path]
    probe_jsons: list[Path]
    trajectories_dir: Path
    logs_dir: Path
    benchmarks_dir: Path
    records_dir: Path
    keypoints: tuple[str, ...]


def _write_trajectories(path: Path, truth: Path, frames: int, plant) -> None:
    """Trajectories from the ground truth's first `frames` frames, score 0.9, changed by `plant`."""
    rows = pq.read_table(truth).to_pandas()
    rows = rows[rows["frame"] < frames].drop(columns=["visible", "video"]).reset_index(drop=True)
    rows["score"] = np.float32(0.9)
    plant(rows)
    table = pa.table(
        {
            "frame": pa.array(rows["frame"], pa.int64()),
            "time_s": pa.array(rows["time_s"], pa.float64()),
            "instance": pa.array(rows["instance"], pa.int16()),
            "keypoint": pa.array(rows["keypoint"], pa.string()).dictionary_encode(),
            "x": pa.array(rows["x"], pa.float32()),
            "y": pa.array(rows["y"], pa.float32()),
            "score": pa.array(rows["score"], pa.float32()),
        }
    ).replace_schema_metadata({"posecore_version": "0.1.0", "model_hash": "ab12cd34"})
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)


def _plant_000(rows) -> None:
    rows.loc[rows["frame"].between(20, 29) & (rows["keypoint"] == "snout"), "score"] = 0.1
    rows.loc[(rows["frame"] == 40) & (rows["keypoint"] == "tailtip"), "x"] += JUMP_PX


def _plant_001(rows) -> None:
    rows.loc[rows["frame"].between(5, 7) & (rows["keypoint"] == "tailbase"), ["x", "y", "score"]] = np.nan


def make_archive_inputs(root: Path) -> ArchiveInputs:
    """Fabricate the archive under `root` (see the module docstring)."""
    synth = make_archive(root / "synth", SynthConfig(n_videos=3, n_frames=N_FRAMES, n_labeled_per_video=4))
    names = [path.stem for path in synth.videos]
    paths = dict(zip(names, synth.videos, strict=True))
    paths["mouse-002"] = truncate_video(synth.videos[2], root / "data" / "mouse-002.mp4", fraction=0.4)
    logs, probes = root / "logs", []
    for name in names:
        log = logs / "probe_video" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        probes.append(root / "results" / "videos" / f"{name}.json")
        error = probe_to_json(paths[name], probes[-1])  # as the workflow's probe_video does
        # Its log: the error's traceback, as the workflow script leaves it, or nothing.
        log.write_text("" if error is None else "starting\n" + "".join(traceback.format_exception(error)))
    trajectories = root / "results" / "trajectories" / MODEL
    _write_trajectories(trajectories / "video=mouse-000/part-0.parquet", synth.ground_truth[0], N_FRAMES, _plant_000)
    _write_trajectories(trajectories / "video=mouse-001/part-0.parquet", synth.ground_truth[1], 50, _plant_001)
    benchmarks = root / "benchmarks"
    jobs = benchmarks / "infer" / MODEL
    jobs.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (jobs / "00000.tsv").write_text(header + "1.5\t0:00:01\t100\t200\t90\t95\t0\t1\t50\t1.4\n")
    repeats = "2.0\t0:00:02\t100\t200\t90\t95\t0\t1\t50\t1.9\n3.0\t0:00:03\t1\t2\t3\t4\t0\t1\t50\t2\n"
    (jobs / "00001.tsv").write_text(header + repeats)  # two repeats: 2.5 s on average
    # Job 0 made mouse-000's first 30 frames (1.5 s); job 1 its last 30 (2.5 s) and kept a shard
    # of mouse-001 made earlier, which costs nothing: mouse-000 took 4 s, mouse-001 none.
    records = root / "results" / "predictions" / MODEL / "jobs"
    write_record([ShardResult(Shard("mouse-000", 0, 0, 30), "done", 1.2)], records / "00000.tsv")
    write_record(
        [ShardResult(Shard("mouse-000", 1, 30, 60), "done", 2.0), ShardResult(Shard("mouse-001", 0, 0, 50), "kept")],
        records / "00001.tsv",
    )
    return ArchiveInputs(
        root=root,
        videos=names,
        video_paths=paths,
        probe_jsons=probes,
        trajectories_dir=trajectories,
        logs_dir=logs,
        benchmarks_dir=benchmarks,
        records_dir=records,
        keypoints=KEYPOINTS,
    )


@pytest.fixture(scope="session")
def archive_config() -> ArchiveConfig:
    """The thresholds the tests use (`CONFIG`)."""
    return CONFIG


@pytest.fixture(scope="session")
def archive_inputs(tmp_path_factory: pytest.TempPathFactory) -> ArchiveInputs:
    """The fabricated archive, made once per session; tests must not change its files."""
    return make_archive_inputs(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def archive_report(archive_inputs: ArchiveInputs, tmp_path_factory: pytest.TempPathFactory):
    """The report of the fabricated archive (no labels or training), built once: (page, figures folder, qc)."""
    from posecore.qc.report import build_report

    out = tmp_path_factory.mktemp("report")
    qc = build_report(
        out / "report.html",
        model_name=MODEL,
        trajectories_dir=archive_inputs.trajectories_dir,
        probe_jsons=archive_inputs.probe_jsons,
        videos=archive_inputs.videos,
        logs_dir=archive_inputs.logs_dir,
        benchmarks_dir=archive_inputs.benchmarks_dir,
        records_dir=archive_inputs.records_dir,
        figures_dir=out / "figures",
        config=CONFIG,
    )
    return out / "report.html", out / "figures", qc


class Page(HTMLParser):
    """What a reader of a page sees: tables (by class) as rows of cell text, list items, images, videos, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.items: list[tuple[str, str]] = []  # (class, text) of list items
        self.images: list[dict[str, str]] = []
        self.videos: list[dict[str, str]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._item: tuple[str, list[str]] | None = None
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
        elif tag == "video":
            self.videos.append(attrs)
        elif tag in ("h1", "h2", "h3", "h4"):
            self._heading = []
        elif tag == "li":
            self._item = (attrs.get("class", ""), [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            self.headings.append(f"{tag}:{''.join(self._heading).strip()}")
            self._heading = None
        elif tag == "li" and self._item is not None:
            self.items.append((self._item[0], "".join(self._item[1])))
            self._item = None

    def handle_data(self, data):
        self.text.append(data)
        for part in (self._cell, self._heading, None if self._item is None else self._item[1]):
            if part is not None:
                part.append(data)

    @property
    def plain(self) -> str:
        """The page's text as one string, runs of whitespace as one space."""
        return " ".join("".join(self.text).split())

    def rows(self, table: str) -> dict[str, dict[str, str]]:
        """The rows of a table by their first cell, each as {column header: cell text}."""
        header, *rows = self.tables[table]
        return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


@pytest.fixture(scope="session")
def page():
    """Parse HTML text into a `Page`."""
    return Page
