import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.evaluate import evaluate, write_evaluation
from posecore.io.dataset import read_dataset
from posecore.io.history import keep_outputs
from posecore.models.export import load_model

result = evaluate(load_model(snakemake.input.model), read_dataset(snakemake.input.dataset[0]), split="test")
write_evaluation(result, Path(snakemake.output.metrics).parent)
# Kept aside, so that a failed re-evaluation leaves these readable (posecore.io.history).
keep_outputs(snakemake.output, Path(snakemake.output.metrics).parent / "history", "eval")
