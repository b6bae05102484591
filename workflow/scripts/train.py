import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import hashlib
import logging
from pathlib import Path

# What train.* "auto" decided from the labels, and warnings of a model that is not done.
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

from posecore.io.dataset import read_dataset
from posecore.io.history import keep_outputs
from posecore.multi.config import is_multi_animal, topdown_config
from posecore.train.config import ModelConfig, TrainConfig
from posecore.train.fit import train_model

dataset = read_dataset(snakemake.input.dataset[0])
model_config = ModelConfig.from_dict(snakemake.params.model, "config")
train_config = TrainConfig.from_dict(snakemake.params.train, "config")
out_dir = Path(snakemake.output.model).parent
if is_multi_animal(snakemake.params.animals):
    from posecore.multi.train import train_topdown

    animals = topdown_config(snakemake.params.animals, "config")
    result = train_topdown(dataset, animals, model_config, train_config, out_dir, source=snakemake.input.dataset[0])
else:
    result = train_model(dataset, model_config, train_config, out_dir, source=snakemake.input.dataset[0])
print(result, file=sys.stderr)
# Kept aside, so that a failed retrain leaves this model readable (posecore.io.history).
model = Path(snakemake.output.model)
keep_outputs(snakemake.output, model.parent / "history", hashlib.sha256(model.read_bytes()).hexdigest()[:12])
