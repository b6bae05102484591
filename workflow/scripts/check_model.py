import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.infer.job import check_keypoints
from posecore.multi.predict import load_any_model

# Refuse a model whose keypoints are not the config's once, before any shard runs (a top-down
# model's are its instance model's: each animal's keypoints).
loaded = load_any_model(snakemake.input.model)
check_keypoints(loaded.meta, snakemake.params.keypoints, snakemake.input.model)
Path(snakemake.output.checked).write_text("\n".join(loaded.meta.keypoint_names) + "\n")
