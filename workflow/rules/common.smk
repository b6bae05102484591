# Helpers shared by the rules: the validated config and video sheet, wildcard constraints,
# and the input functions that depend on them.

import csv
import glob
import os
import re
import sys

import pandas as pd
from snakemake.utils import validate

from posecore.hugepages import with_huge_pages
from posecore.multi.config import is_multi_animal, topdown_config, tracker_config
from posecore.train.config import ModelConfig, TrainConfig

# Every job's process inherits Snakemake's environment: its models then run on huge pages
# (posecore.hugepages; inference 1.5 to 1.7 times as fast on the CPU).
os.environ.update(with_huge_pages(os.environ))
# Inductor's cache of compiled models in the working directory (shared by the nodes of a
# cluster, unlike each node's /tmp): the first shard on a GPU compiles, the next ones load.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(".cache/torchinductor"))

validate(config, schema="../schemas/config.schema.yaml")

VIDEOS = pd.read_csv(config["videos"], sep="\t", dtype=str, comment="#").fillna("")
BOOLEANS = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
    "": False,
}
for column in ("labeling", "refine"):
    if column in VIDEOS.columns:
        # Anything else stays a string, which the schema then refuses, naming the column.
        VIDEOS[column] = [BOOLEANS.get(value.lower(), value) for value in VIDEOS[column]]
validate(VIDEOS, schema="../schemas/videos.schema.yaml")
if VIDEOS["video"].duplicated().any():
    raise ValueError(
        f"{config['videos']}: video names must be unique, repeated: "
        f"{sorted(set(VIDEOS['video'][VIDEOS['video'].duplicated()]))}"
    )
VIDEOS = VIDEOS.set_index("video", drop=False)
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


# Video names as the sheet's schema allows them: a pattern, not an alternation of every name,
# which Snakemake would scan for every path of every job (slow on archives of 1,000 videos).
# video_path() refuses a name that is not in the sheet.
wildcard_constraints:
    video=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    dataset=re.escape(DATASET),
    model=re.escape(MODEL),
    shard=r"\d{5}",
    batch=r"\d{5}",


VIDEO_PATHS = VIDEOS["path"].to_dict()
# Videos in sheet order, config inference.videos_per_job at a time: on a cluster, each batch's
# probes and plans go out as one SLURM job and its shards and aggregations as another (the
# prepare_batch and inference_batch rules tie them together for the profile's job groups).
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

    A pattern that matches nothing is kept as it is, so that Snakemake reports it as a
    missing input of assemble_dataset instead of the workflow failing to load.
    """
    files = []
    for pattern in config["dataset"]["labels"]:
        files.extend(sorted(glob.glob(pattern)) or [pattern])
    return files


def shard_files(wildcards):
    """The shard outputs of one video, known once its shard plan exists (a checkpoint)."""
    plan = checkpoints.plan_shards.get(video=wildcards.video).output.plan
    with open(plan, newline="") as rows:
        shards = [int(row["shard"]) for row in csv.DictReader(rows, delimiter="\t")]
    return expand(
        "results/predictions/{model}/{video}/shard-{shard:05d}.parquet",
        model=wildcards.model,
        video=wildcards.video,
        shard=shards,
    )


def marked_videos(column):
    """Videos the sheet marks true in a boolean column (labeling, refine)."""
    if column not in VIDEOS.columns:
        return []
    return list(VIDEOS.index[VIDEOS[column]])


def all_targets():
    """The default targets: the QC report (which needs everything else), the batch records
    (which group a cluster's jobs), the frames to label and the outlier frames of the videos
    the sheet marks for them."""
    return [
        f"results/qc/{MODEL}/report.html",
        *expand("results/jobs/prepare-{batch}.txt", batch=BATCHES),
        *expand("results/jobs/{model}/inference-{batch}.txt", model=MODEL, batch=BATCHES),
        *expand("results/labeling/{video}/frames.tsv", video=marked_videos("labeling")),
        *expand(
            "results/labeling/refine/{model}/{video}", model=MODEL, video=marked_videos("refine")
        ),
    ]


def report_after_failure():
    """Build the QC report from what the run left, when jobs failed (the Snakefile's onerror).

    With --keep-going every other video finishes, but qc_report, which needs every video, does not
    run; this builds the same page from the outputs there are, listing the failed videos with the
    error from their logs. Snakemake did not make these files, so they are dated 1970: the next
    run rebuilds them through qc_report. A failure here is reported, never raised over the run's own.
    """
    from pathlib import Path

    from posecore.qc.archive import ArchiveConfig
    from posecore.qc.report import build_report

    model = Path("results/models") / MODEL
    training = {
        "dataset_h5": Path(f"results/datasets/{DATASET}.h5"),
        "metrics_json": model / "eval" / "metrics.json",
        "predictions_parquet": model / "eval" / "predictions.parquet",
        "training_csv": model / "metrics.csv",
    }
    if not all(path.exists() for path in training.values()):
        training = {"dataset_h5": training["dataset_h5"]} if training["dataset_h5"].exists() else {}
    html = Path(f"results/qc/{MODEL}/report.html")
    figures = html.parent / "figures"
    try:
        build_report(
            html,
            model_name=MODEL,
            trajectories_dir=Path(f"results/trajectories/{MODEL}"),
            probe_jsons=[
                p
                for p in map(Path, expand(rules.probe_video.output.probe, video=VIDEOS.index))
                if p.exists()
            ],
            videos=list(VIDEOS.index),
            logs_dir=Path("logs"),
            benchmarks_dir=Path("benchmarks"),
            video_paths=VIDEO_PATHS,
            figures_dir=figures,
            config=ArchiveConfig.from_dict(config["qc"], "config: qc"),
            **training,
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
