# Helpers shared by the rules: the validated config and video sheet, wildcard constraints,
# and the input functions that depend on them.

import functools
import glob
import os
import re
import sys

from pathlib import Path

from snakemake.utils import validate

from posecore.hugepages import with_huge_pages
from posecore.errors import InputError
from posecore.infer.plan import read_plan
from posecore.io.assemble import SplitConfig
from posecore.io.ffmpeg_tools import ffmpeg_executable, ffprobe_executable
from posecore.multi.config import is_multi_animal, topdown_config, tracker_config
from posecore.sheet import check_video_files, read_video_sheet
from posecore.threed.boards import Board
from posecore.threed.options import CalibrationConfig, TriangulationConfig
from posecore.threed.sheet import calibration_sources, sessions_of_sheet
from posecore.train.config import ModelConfig, TrainConfig

# Every job's process inherits Snakemake's environment: its models then run on huge pages
# (posecore.hugepages; inference 1.5 to 1.7 times as fast on the CPU).
os.environ.update(with_huge_pages(os.environ))
# Every job imports posecore from this checkout, whatever environment runs it: the one the
# driver runs in, or the per-rule conda environment (`--sw-deployment-method conda`), which holds
# posecore's dependencies and not posecore, so that a change to the code reaches every job.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [str(Path(workflow.basedir).parent), os.environ.get("PYTHONPATH")])
    )
)
# Inductor's cache of compiled models in the working directory (shared by the nodes of a
# cluster, unlike each node's /tmp): the first shard on a GPU compiles, the next ones load.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(".cache/torchinductor"))

validate(config, schema="../schemas/config.schema.yaml")
# Every stage reads video through ffmpeg and ffprobe: without them, stop before any job, saying
# how to install them (a GPU node that pip alone set up has neither).
ffmpeg_executable(), ffprobe_executable()

# The video sheet, each row checked against its schema, and every video file there: a wrong row
# or a missing file stops the run before any job, naming the sheet's row (as a spreadsheet
# counts them). A sheet with a header alone is an archive without videos yet.
VIDEOS = read_video_sheet(
    config["videos"], Path(workflow.basedir) / "schemas" / "videos.schema.yaml"
)
check_video_files(VIDEOS, config["videos"])
DATASET = config["dataset"]["name"]
MODEL = config["model"]["name"]
# Parsed once here, so that a bad value or hyperparameter stops the run before any job.
CONFIG_SOURCE = ", ".join(map(str, workflow.configfiles)) or "config"
MODEL_CONFIG = {key: value for key, value in config["model"].items() if key != "name"}
ModelConfig.from_dict(MODEL_CONFIG, CONFIG_SOURCE)
TrainConfig.from_dict(config["train"], CONFIG_SOURCE)
# Several animals per frame (animals.max_animals above 1): a top-down model, tracked videos.
MULTI_ANIMAL = is_multi_animal(config["animals"])
if MULTI_ANIMAL:
    topdown_config(config["animals"], CONFIG_SOURCE)
    tracker_config(config["animals"], config["tracking"], CONFIG_SOURCE)
# A top-down model's best checkpoint and learning curves are its instance model's, in instance/.
TRAINED = "instance/" if MULTI_ANIMAL else ""
# Exports of tracked videos (export_video), by file suffix: SLEAP and multi-animal DeepLabCut.
EXPORT_KINDS = {"slp": "slp", "h5": "dlc-h5"}
EXPORT_SUFFIXES = [s for s, kind in EXPORT_KINDS.items() if kind in config["animals"]["exports"]]
try:
    SplitConfig(**config["dataset"]["split"])
except ValueError as error:
    raise InputError(CONFIG_SOURCE, str(error), where="key dataset.split") from None
# Multi-camera 3D: the config's rigs and the sheet's sessions (videos grouped by their `session`
# column), checked here so that a bad board, option or session stops the run before any job.
RIGS = config["threed"]["rigs"]
for rig_name, rig in RIGS.items():
    Board.from_dict(rig["board"], f"{CONFIG_SOURCE}: threed.rigs.{rig_name}.board")
    CalibrationConfig.from_dict(
        rig.get("calibration", {}), f"{CONFIG_SOURCE}: threed.rigs.{rig_name}.calibration"
    )
TriangulationConfig.from_dict(config["threed"]["triangulation"], f"{CONFIG_SOURCE}: threed")
SESSIONS = sessions_of_sheet(VIDEOS.to_dict("records"), RIGS, config["videos"])


# Video names as the sheet's schema allows them: a pattern, not an alternation of every name,
# which Snakemake would scan for every path of every job (slow on archives of 1,000 videos).
# video_path() refuses a name that is not in the sheet.
wildcard_constraints:
    video=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=re.escape(DATASET),
    model=re.escape(MODEL),
    job=r"\d{5}",
    batch=r"\d{5}",
    session=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    rig=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    suffix="|".join(EXPORT_KINDS),


VIDEO_PATHS = VIDEOS["path"].to_dict()
# Videos in sheet order, config inference.videos_per_job at a time: on a cluster, each batch's
# probes go out as one SLURM job (the prepare_batch rule ties them together for the profile's
# job group). Inference jobs are sized by work instead, by the plan (plan_inference).
VIDEOS_PER_JOB = config["inference"]["videos_per_job"]
BATCHES = {
    f"{start // VIDEOS_PER_JOB:05d}": list(VIDEOS.index[start : start + VIDEOS_PER_JOB])
    for start in range(0, len(VIDEOS), VIDEOS_PER_JOB)
}


def video_path(wildcards):
    """The file of a video named in the sheet."""
    if wildcards.video not in VIDEO_PATHS:
        raise ValueError(f"{config['videos']}: no video named {wildcards.video!r} in the sheet")
    return VIDEO_PATHS[wildcards.video]


def label_files():
    """Every label file the config names, glob patterns expanded, in a stable order.

    A pattern that matches no file stops the run before any job, naming it: otherwise a dataset
    already built would be taken as up to date and the new labels never used.
    """
    files = []
    for i, pattern in enumerate(config["dataset"]["labels"]):
        matched = sorted(glob.glob(pattern))
        if not matched:
            raise InputError(
                CONFIG_SOURCE,
                f"{pattern!r} matches no label file (relative to {os.getcwd()})",
                where=f"key dataset.labels[{i}]",
            )
        files.extend(matched)
    return files


@functools.lru_cache(maxsize=4)
def _plan(path, mtime_ns):
    """The inference plan's jobs and each video's jobs, read once per version of the file."""
    jobs, videos = {}, {}
    for planned in read_plan(path):
        jobs.setdefault(planned.job, []).append(planned.shard)
        videos.setdefault(planned.shard.video, set()).add(planned.job)
    return jobs, videos


def inference_plan():
    """(shards by job, jobs by video) of the plan, known once the plan exists (a checkpoint)."""
    path = checkpoints.plan_inference.get().output.plan
    return _plan(path, os.stat(path).st_mtime_ns)


def _job(wildcards):
    jobs, _ = inference_plan()
    number = int(wildcards.job)
    if number not in jobs:
        raise ValueError(f"results/shards/plan.tsv: no inference job {wildcards.job} in the plan")
    return jobs[number]


def job_shards(wildcards):
    """The shards of one inference job, as `video:index:start:stop` (a change reruns the job)."""
    return [f"{s.video}:{s.index}:{s.start}:{s.stop}" for s in _job(wildcards)]


def job_videos(wildcards):
    """The video files of one inference job."""
    return sorted({VIDEO_PATHS[s.video] for s in _job(wildcards)})


def job_video_paths(wildcards):
    """The file of each video of one inference job, by name."""
    return {s.video: VIDEO_PATHS[s.video] for s in _job(wildcards)}


def job_probes(wildcards):
    """The probes of the videos of one inference job."""
    return expand(rules.probe_video.output.probe, video=sorted({s.video for s in _job(wildcards)}))


def video_records(wildcards):
    """The records of the inference jobs that hold a video's shards (none for a video that
    could not be probed: its aggregation then raises the probe's error)."""
    _, videos = inference_plan()
    return expand(
        "results/predictions/{model}/jobs/{job:05d}.tsv",
        model=wildcards.model,
        job=sorted(videos.get(wildcards.video, ())),
    )


def calibration_inputs(rig):
    """Every calibration image or video of a rig of the config (threed.rigs), in a stable order."""
    if rig not in RIGS:
        raise ValueError(f"{CONFIG_SOURCE}: no rig named {rig!r} under threed.rigs")
    files = []
    for sources in calibration_sources(RIGS[rig]).values():
        files.extend([sources] if isinstance(sources, str) else sources)
    return files


def session_videos(session):
    """The videos of a session of the sheet, in the sheet's order (one per camera)."""
    if session not in SESSIONS:
        raise ValueError(f"{config['videos']}: no session named {session!r} in the sheet")
    return [view.video for view in SESSIONS[session].views]


def marked_videos(column):
    """Videos the sheet marks true in a boolean column (labeling, refine)."""
    if column not in VIDEOS.columns:
        return []
    return list(VIDEOS.index[VIDEOS[column]])


def all_targets():
    """The default targets: the QC report (which needs everything else), the batch records
    (which group a cluster's probes), the frames to label and the outlier frames of the videos
    the sheet marks for them; with several animals per frame, each video's exports."""
    return [
        f"results/qc/{MODEL}/report.html",
        *expand("results/jobs/prepare-{batch}.txt", batch=BATCHES),
        *expand("results/labeling/{video}/frames.tsv", video=marked_videos("labeling")),
        *expand(
            "results/labeling/refine/{model}/{video}", model=MODEL, video=marked_videos("refine")
        ),
        *expand("results/calibration/{rig}/calibration.toml", rig=RIGS),
        *expand(
            "results/trajectories3d/{model}/session={session}/part-0.parquet",
            model=MODEL,
            session=SESSIONS,
        ),
        *(
            expand(
                "results/exports/{model}/{video}.{suffix}",
                model=MODEL,
                video=VIDEOS.index,
                suffix=EXPORT_SUFFIXES,
            )
            if MULTI_ANIMAL
            else []
        ),
    ]


def qc_report_files(model):
    """The files the QC report of `model` reads, by name (the qc_report rule's inputs, and the
    report after a failed run: one list, so that the two cannot differ)."""
    return {
        "dataset_h5": expand(rules.assemble_dataset.output.dataset, dataset=DATASET)[0],
        "metrics_json": expand(rules.evaluate.output.metrics, model=model)[0],
        "predictions_parquet": expand(rules.evaluate.output.predictions, model=model)[0],
        "training_csv": expand(rules.train.output.curves, model=model)[0],
        "trajectories": expand(
            rules.aggregate.output.trajectories, model=model, video=VIDEOS.index
        ),
        "probe_jsons": expand(rules.probe_video.output.probe, video=VIDEOS.index),
        "plan_tsv": ancient(rules.plan_inference.output.plan),
        # Multi-camera 3D (none for a single-camera archive): each rig's calibration.toml and
        # corners.parquet, rig after rig; each session's 3D trajectories.
        "calibrations": [
            path
            for rig in RIGS
            for path in expand(
                [rules.calibrate.output.calibration, rules.calibrate.output.corners], rig=rig
            )
        ],
        "points3d": expand(rules.triangulate.output.trajectories, model=model, session=SESSIONS),
    }


def qc_report_settings(model):
    """What else the QC report of `model` needs: where to look, and the config's qc section."""
    return {
        "videos": VIDEOS.index.tolist(),
        "video_paths": VIDEO_PATHS,
        "trajectories_dir": f"results/trajectories/{model}",
        "logs_dir": "logs",
        "benchmarks_dir": "benchmarks",
        "records_dir": f"results/predictions/{model}/jobs",
        "qc": config["qc"],
        "rigs": list(RIGS),
        "sessions": list(SESSIONS),
        "skeleton": config["dataset"].get("skeleton", []),
    }


def report_after_failure(log):
    """Build the QC report from what the run left, when jobs failed (the Snakefile's onerror).

    With --keep-going every other video finishes, but qc_report, which needs every video, does not
    run; this builds the same page from the files there are, listing the failed videos with the
    error from their logs, and, on top, the jobs that failed (from Snakemake's log of the run) and
    that what it shows may be stale. Snakemake did not make these files, so they are dated 1970:
    the next run rebuilds them through qc_report. A failure here is reported, never raised over
    the run's own.
    """
    from posecore.qc.failures import failed_jobs
    from posecore.qc.report import workflow_report

    html = Path(f"results/qc/{MODEL}/report.html")
    figures = html.parent / "figures"
    try:
        # Snakemake gives the log files of the run (a list in Snakemake 9, one path before).
        logs = [log] if isinstance(log, (str, os.PathLike)) else list(log or ())
        failed = [
            job
            for path in logs
            if Path(path).is_file()
            for job in failed_jobs(Path(path).read_text())
        ]
        workflow_report(
            html, figures, MODEL, qc_report_files(MODEL), qc_report_settings(MODEL), failed=failed
        )
    except Exception as error:
        print(
            f"posecore: no QC report over the failed run: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return
    for path in (html, figures):
        os.utime(path, (0, 0))
    print(
        f"posecore: some jobs failed; the QC report over the rest, listing them: {html}",
        file=sys.stderr,
    )
