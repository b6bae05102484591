import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.io.dataset import read_dataset
from posecore.io.history import keep_outputs
from posecore.multi.predict import is_topdown

dataset = read_dataset(snakemake.input.dataset[0])
out_dir = Path(snakemake.output.metrics).parent
if is_topdown(snakemake.input.model):
    from posecore.multi.evaluate import evaluate_topdown, write_multi_evaluation
    from posecore.multi.predict import load_topdown

    write_multi_evaluation(evaluate_topdown(load_topdown(snakemake.input.model), dataset, "test"), out_dir)
else:
    from posecore.evaluate import evaluate, write_evaluation
    from posecore.models.export import load_model

    write_evaluation(evaluate(load_model(snakemake.input.model), dataset, split="test"), out_dir)
# Kept aside, so that a failed re-evaluation leaves these readable (posecore.io.history).
keep_outputs(snakemake.output, out_dir / "history", "eval")
