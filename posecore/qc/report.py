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
from posecore.io.atomic import atomic_path
from posecore.io.dataset import read_dataset
from posecore.qc.animals import animals_qc, animals_section, multi_animal_model_section
from posecore.qc.archive import ArchiveConfig, ArchiveQC, archive_qc
from posecore.qc.archive_html import archive_section
from posecore.qc.failures import failure_notice, find_failures
from posecore.qc.html import CSS, ReportClip, ReportFigure, Section, esc
from posecore.qc.inputs import read_infer_seconds, read_metrics, read_probes, unfinished_jobs
from posecore.qc.labels import label_qc, label_section
from posecore.qc.threed import ThreeDInputs, threed_section
from posecore.qc.training import training_section

PAGE_CSS = """
table.failures td, table.archive td:nth-child(9) { text-align: left; } table.archive td { white-space: nowrap; }
.scroll { overflow-x: auto; } .notice { border: 2px solid; padding: 0.5em 1em; margin: 1em 0; }
nav ul { display: inline; padding: 0; } nav li { display: inline; margin-right: 1em; }
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
    training_json: Path | None = None,
    logs_dir: Path | None = None,
    benchmarks_dir: Path | None = None,
    records_dir: Path | None = None,
    plan_tsv: Path | None = None,
    video_paths: Mapping[str, str | Path] | None = None,
    figures_dir: Path | None = None,
    config: ArchiveConfig | None = None,
    notice: Sequence[str] = (),
    threed: ThreeDInputs | None = None,
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
        training_json: the training summary: settings decided from the labels, how the run
            ended, warnings of a model that is not done (None: left out).
        logs_dir: the workflow's `logs/`, searched for why videos without trajectories failed.
        benchmarks_dir: the workflow's `benchmarks/`, for inference speed (`infer/{model}/{job}.tsv`).
        records_dir: the model's inference job records (`results/predictions/{model}/jobs/`), which
            say how many frames of which video each job made.
        plan_tsv: the inference plan (`results/shards/plan.tsv`), which says which jobs hold
            which video's shards, so that a job that left no record is blamed for its videos.
        video_paths: each video's file, by name, for the frames and clips; default: the probe's `path`.
        figures_dir: when given, every figure (PNG) and clip (MP4) is also written there as a file
            named after it (the folder is replaced as a whole).
        config: the archive QC's thresholds and how much it shows; None: the defaults.
        notice: lines of a warning at the top of the page (`workflow_report` after a failed run).
        threed: the rigs' calibrations and the sessions' 3D trajectories; given (and not empty),
            the page has the 3D section.

    Returns:
        The archive QC the page shows.

    Raises:
        InputError: an input is missing or breaks its contract; no page is written.
        ValueError: evaluation files without the dataset they are of.
    """
    config = config or ArchiveConfig()
    probes = read_probes(probe_jsons)
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
                    summary_json=None if training_json is None else Path(training_json),
                )
            )
    names = sorted(set(videos or ()) | set(probes))
    unfinished = {} if records_dir is None or plan_tsv is None else unfinished_jobs(Path(plan_tsv), Path(records_dir))
    failures = (
        {}
        if logs_dir is None
        else find_failures(logs_dir, model_name, names, trajectories_dir=trajectories_dir, unfinished_jobs=unfinished)
    )
    seconds = {}
    if benchmarks_dir is not None and records_dir is not None:
        seconds = read_infer_seconds(Path(records_dir), Path(benchmarks_dir) / "infer" / model_name)
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
    if threed is not None and (threed.calibrations or threed.sessions):
        sections.append(threed_section(threed))
    counts = {"complete": qc.count("ok"), "incomplete": qc.count("incomplete"), "failed": qc.count("failed", "missing")}
    page = render_page(model_name, sections, video_counts=counts, score_threshold=config.score_threshold, notice=notice)
    if figures_dir is not None:
        write_media(sections, Path(figures_dir))
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return qc


TRAINING_FILES = ("dataset_h5", "metrics_json", "predictions_parquet", "training_csv")
"""The workflow's files of the Labels and Training sections (the Training section needs all four)."""


def workflow_report(
    out_html: str | Path,
    figures_dir: str | Path,
    model_name: str,
    files: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    failed: Sequence[tuple[str, Path | None]] | None = None,
) -> ArchiveQC:
    """The QC report of a workflow's model, from the files and settings its qc_report rule names.

    One call for the rule and for the report after a failed run (`failed` given), so that the two
    cannot differ in what they read.

    Args:
        out_html: the page.
        figures_dir: the folder of its figures and clips.
        model_name: the model.
        files: by name, the rule's inputs: `dataset_h5`, `metrics_json`, `predictions_parquet`,
            `training_csv` (`TRAINING_FILES`), `training_json` (the training summary, optional),
            `probe_jsons` (a list), `plan_tsv`; any may be missing after a failed run.
            For a multi-camera archive also `calibrations` (each rig's calibration.toml and
            corners.parquet, rig after rig) and `points3d` (each session's 3D trajectories).
        settings: the rule's settings: `videos`, `video_paths`, `trajectories_dir`, `logs_dir`,
            `benchmarks_dir`, `records_dir`, `qc` (the config's qc section), and for 3D `rigs`,
            `sessions` and `skeleton`.
        failed: after a failed run, its failed jobs and their logs (`posecore.qc.failures.failed_jobs`):
            the files that exist are used (the Training section only with all four of its files),
            and the page says which jobs failed and that what it shows may be older than the config.
    """
    given = {name: value for name, value in files.items() if name in (*TRAINING_FILES, "training_json", "plan_tsv")}
    probes = [Path(p) for p in files.get("probe_jsons", ())]
    notice: list[str] = []
    if failed is not None:
        given = {name: value for name, value in given.items() if Path(value).exists()}
        if not all(name in given for name in TRAINING_FILES):
            given = {name: value for name, value in given.items() if name not in TRAINING_FILES[1:]}
        probes = [p for p in probes if p.exists()]
        notice = [
            "This page was built after a run in which jobs failed; it shows the files that were there, "
            "which may be older than the config (stale) where a job before them failed:",
            *(failure_notice(failed) or ["(Snakemake's log names no failed job)"]),
        ]
    rigs, sessions = list(settings.get("rigs", ())), list(settings.get("sessions", ()))
    calibrations = files.get("calibrations", ())
    threed = ThreeDInputs(
        calibrations={
            rig: (Path(calibrations[2 * i]), Path(calibrations[2 * i + 1]))
            for i, rig in enumerate(rigs)
            if failed is None or all(Path(p).exists() for p in calibrations[2 * i : 2 * i + 2])
        },
        sessions={
            session: Path(path)
            for session, path in zip(sessions, files.get("points3d", ()), strict=True)
            if failed is None or Path(path).exists()
        },
        skeleton=[tuple(edge) for edge in settings.get("skeleton", ())],
    )
    return build_report(
        Path(out_html),
        model_name=model_name,
        threed=threed,
        trajectories_dir=Path(settings["trajectories_dir"]),
        probe_jsons=probes,
        videos=list(settings["videos"]),
        video_paths=dict(settings["video_paths"]),
        logs_dir=Path(settings["logs_dir"]),
        benchmarks_dir=Path(settings["benchmarks_dir"]),
        records_dir=Path(settings["records_dir"]),
        figures_dir=Path(figures_dir),
        config=ArchiveConfig.from_dict(settings["qc"], "config: qc"),
        notice=notice,
        **{name: Path(value) for name, value in given.items()},
    )


def render_page(
    model_name: str,
    sections: Sequence[Section],
    *,
    video_counts: Mapping[str, int] | None = None,
    score_threshold: float | None = None,
    built: datetime | None = None,
    notice: Sequence[str] = (),
) -> str:
    """The report's HTML: a header (model, date, posecore version, video counts), then the sections.

    Args:
        model_name: the model, shown in the title.
        sections: the sections in page order.
        video_counts: videos per status (e.g. complete, incomplete, failed), shown in the header.
        score_threshold: the score threshold, shown in the header.
        built: the time to show; default now.
        notice: lines of a warning shown above everything (a run that failed, what is stale).
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
        + (f'<div class="bad notice">{"<br>".join(esc(line) for line in notice)}</div>\n' if notice else "")
        + f'<nav class="meta">Sections: <ul>{contents}</ul></nav>\n'
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
