"""The QC report: one self-contained HTML page over a model's labels, training and video archive.

The page opens offline: CSS is inline, figures are inline base64 PNG and clips inline base64
MP4 (`<video>`, no JavaScript), and it references no URL. `build_report` reads the artefacts of
the other stages, composes a header and the sections (labels and training when their inputs are
given, the archive always, the animals when videos hold several), and writes the page
atomically; it still builds when videos failed, and lists them. `write_media` also writes every
figure and clip as a file into a folder, which the workflow marks for Snakemake's `--report`
(see workflow/report/qc_figure.rst for captions).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.io.dataset import read_dataset
from posecore.qc.animals import animals_qc, animals_section, multi_animal_model_section
from posecore.qc.archive import ArchiveConfig, ArchiveQC, archive_qc, archive_section
from posecore.qc.failures import find_failures
from posecore.qc.html import CSS, ReportClip, ReportFigure, Section, esc
from posecore.qc.inputs import read_benchmark_seconds, read_metrics, read_probe
from posecore.qc.labels import label_qc, label_section
from posecore.qc.training import training_section

PAGE_CSS = """
table.failures td, table.archive td:nth-child(9) { text-align: left; } table.archive td { white-space: nowrap; }
.scroll { overflow-x: auto; } nav ul { display: inline; padding: 0; } nav li { display: inline; margin-right: 1em; }
video { display: block; width: 100%; max-width: 480px; }
"""
"""Styles of the page's own parts, after the shared `posecore.qc.html.CSS`."""


def build_report(
    out_html: Path,
    *,
    model_name: str,
    trajectories_dir: Path,
    probe_jsons: Sequence[Path] = (),
    videos: Sequence[str] | None = None,
    dataset_h5: Path | None = None,
    metrics_json: Path | None = None,
    predictions_parquet: Path | None = None,
    training_csv: Path | None = None,
    logs_dir: Path | None = None,
    benchmarks_dir: Path | None = None,
    video_paths: Mapping[str, str | Path] | None = None,
    figures_dir: Path | None = None,
    config: ArchiveConfig | None = None,
) -> ArchiveQC:
    """Write the QC report of one model as a self-contained HTML page, atomically.

    Args:
        out_html: where the page goes; written to a temporary file beside it, then renamed.
        model_name: the model's name: the title, and its folder under the logs and benchmarks.
        trajectories_dir: the model's trajectories, `video=<name>/*.parquet` (may not exist when
            every video failed).
        probe_jsons: one probe JSON per video that was probed; the video's name is the file stem.
        videos: every video of the archive (the sheet's names), so that a video that failed
            before anything was written is listed too; None: the videos with probes or trajectories.
        dataset_h5: the training dataset; given, the page has the Labels section.
        metrics_json: the evaluation's metrics; with `predictions_parquet` and `dataset_h5`, the
            page has the Training section.
        predictions_parquet: the evaluation's per-point predictions.
        training_csv: Lightning's CSVLogger metrics for the learning curves (None: left out).
        logs_dir: the workflow's `logs/`, searched for why videos without trajectories failed.
        benchmarks_dir: the workflow's `benchmarks/`, for inference speed (`infer_shard/{model}/{video}/*.tsv`).
        video_paths: each video's file, by name, for the frames and clips; default: the probe's `path`.
        figures_dir: when given, every figure (PNG) and clip (MP4) is also written there as a file
            named after it (the folder is replaced as a whole).
        config: the archive QC's thresholds and how much it shows; None: the defaults.

    Returns:
        The archive QC the page shows.

    Raises:
        InputError: an input is missing or breaks its contract; no page is written.
        ValueError: evaluation files without the dataset they are of.
    """
    config = config or ArchiveConfig()
    probes: dict[str, dict[str, Any]] = {}
    for path in map(Path, probe_jsons):
        if path.stem in probes:
            raise InputError(path, f"a second probe for video {path.stem!r}")
        probes[path.stem] = read_probe(path)
    if (metrics_json is None) != (predictions_parquet is None):
        raise ValueError("metrics_json and predictions_parquet come together (the evaluation's two files)")
    if metrics_json is not None and dataset_h5 is None:
        raise ValueError("the Training section needs dataset_h5, the dataset the evaluation is of")
    sections: list[Section] = []
    keypoints = None
    if dataset_h5 is not None:
        dataset = read_dataset(Path(dataset_h5))
        keypoints = list(dataset.keypoint_names)
        if (
            dataset.multi_animal
        ):  # the label and training QC are one animal's per frame: the top-down evaluation instead
            sections.append(multi_animal_model_section(dataset, None if metrics_json is None else Path(metrics_json)))
        else:
            sections.append(label_section(label_qc(dataset), dataset))
        if metrics_json is not None and predictions_parquet is not None and not dataset.multi_animal:
            keypoints = list(read_metrics(Path(metrics_json)).keypoints)
            sections.append(
                training_section(
                    training_csv=None if training_csv is None else Path(training_csv),
                    metrics_json=Path(metrics_json),
                    predictions_parquet=Path(predictions_parquet),
                    dataset=dataset,
                )
            )
    names = sorted(set(videos or ()) | set(probes))
    failures = {} if logs_dir is None else find_failures(logs_dir, model_name, names, trajectories_dir=trajectories_dir)
    seconds = {}
    if benchmarks_dir is not None:
        for name in names:
            files = sorted((Path(benchmarks_dir) / "infer_shard" / model_name / name).glob("*.tsv"))
            if files:
                seconds[name] = read_benchmark_seconds(files)
    qc = archive_qc(
        Path(trajectories_dir),
        keypoints=keypoints,
        probes=probes,
        videos=names,
        failures=failures,
        infer_seconds=seconds,
        config=config,
    )
    sections.append(archive_section(qc, video_paths=video_paths))
    several = animals_qc(qc.files, keypoints)
    if several:
        sections.append(animals_section(several))
    counts = {"complete": qc.count("ok"), "incomplete": qc.count("incomplete"), "failed": qc.count("failed", "missing")}
    page = render_page(model_name, sections, video_counts=counts, score_threshold=config.score_threshold)
    if figures_dir is not None:
        write_media(sections, Path(figures_dir))
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return qc


def render_page(
    model_name: str,
    sections: Sequence[Section],
    *,
    video_counts: Mapping[str, int] | None = None,
    score_threshold: float | None = None,
    built: datetime | None = None,
) -> str:
    """The report's HTML: a header (model, date, posecore version, video counts), then the sections.

    Args:
        model_name: the model, shown in the title.
        sections: the sections in page order.
        video_counts: videos per status (e.g. complete, incomplete, failed), shown in the header.
        score_threshold: the score threshold, shown in the header.
        built: the time to show; default now.
    """
    date = (built or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    meta = [f"model <b>{esc(model_name)}</b>", f"built {date}", f"posecore {esc(__version__)}"]
    if score_threshold is not None:
        meta.append(f"score threshold {score_threshold:g}")
    if video_counts is not None:
        total = sum(video_counts.values())
        shown = ", ".join(
            f'<span class="{"bad" if status == "failed" and n else "ok" if status == "complete" else ""}">'
            f"{n} {esc(status)}</span>"
            for status, n in video_counts.items()
        )
        meta.append(f"videos: {total} ({shown})")
    contents = "".join(f"<li>{esc(s.title)}</li>" for s in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>QC report: {esc(model_name)}</title><style>{CSS}{PAGE_CSS}</style></head>\n<body>\n"
        f"<h1>QC report: {esc(model_name)}</h1>\n"
        f'<p class="meta">{" · ".join(meta)}</p>\n'
        f'<nav class="meta">Sections: <ul>{contents}</ul></nav>\n'
        + "\n".join(s.html() for s in sections)
        + "\n</body></html>\n"
    )


def media_of(sections: Sequence[Section]) -> list[tuple[str, bytes]]:
    """Every figure and clip of the sections as (file name, bytes): `<name>.png` and `<name>.mp4`.

    Raises:
        ValueError: two figures or clips with the same name.
    """
    files: dict[str, bytes] = {}
    for section in sections:
        media: list[ReportFigure | ReportClip] = [*section.figures, *section.clips]
        for item in media:
            name = f"{item.name}.png" if isinstance(item, ReportFigure) else f"{item.name}.mp4"
            if name in files:
                raise ValueError(f"two figures or clips are named {name!r} (section {section.title!r})")
            files[name] = item.png if isinstance(item, ReportFigure) else item.mp4
    return list(files.items())


def write_media(sections: Sequence[Section], folder: Path) -> list[Path]:
    """Write every figure (PNG) and clip (MP4) of the sections into `folder`, replacing it as a whole.

    The files go to a temporary folder beside it, which then takes its place, so a crash leaves
    the old folder or the new one, never a mix.

    Returns:
        The files written, in page order.
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        names = []
        for name, data in media_of(sections):
            (tmp / name).write_bytes(data)
            names.append(name)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return [folder / name for name in names]
