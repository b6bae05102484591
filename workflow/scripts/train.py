import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import hashlib
import logging
from pathlib import Path

# What train.* "auto" decided from the labels, and warnings of a model that is not done.
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

from posecore.io.dataset import read_dataset
from posecore.io.history import keep_outputs
from posecore.train.config import ModelConfig, TrainConfig
from posecore.train.fit import train_model

result = train_model(
    read_dataset(snakemake.input.dataset[0]),
    ModelConfig.from_dict(snakemake.params.model, "config"),
    TrainConfig.from_dict(snakemake.params.train, "config"),
    Path(snakemake.output.model).parent,
    source=snakemake.input.dataset[0],
)
print(result, file=sys.stderr)
# Kept aside, so that a failed retrain leaves this model readable (posecore.io.history).
model = Path(snakemake.output.model)
keep_outputs(snakemake.output, model.parent / "history", hashlib.sha256(model.read_bytes()).hexdigest()[:12])
