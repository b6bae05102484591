# Helpers shared by the rules: the validated config and video sheet, wildcard constraints,
# and the input functions that depend on them.

import glob
import re

import pandas as pd
from snakemake.utils import validate

from posecore.train.config import ModelConfig, TrainConfig

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


wildcard_constraints:
    video="|".join(re.escape(name) for name in VIDEOS.index),
    dataset=re.escape(DATASET),
    model=re.escape(MODEL),
    shard=r"\d{5}",


def video_path(wildcards):
    """The file of a video named in the sheet."""
    return VIDEOS.loc[wildcards.video, "path"]


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
    shards = pd.read_csv(plan, sep="\t")["shard"]
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
    """The default targets: the QC report (which needs everything else), the frames to label
    and the outlier frames of the videos the sheet marks for them."""
    return [
        f"results/qc/{MODEL}/report.html",
        *expand("results/labeling/{video}/frames.tsv", video=marked_videos("labeling")),
        *expand(
            "results/labeling/refine/{model}/{video}", model=MODEL, video=marked_videos("refine")
        ),
    ]
