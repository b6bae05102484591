import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.evaluate import curve_sizes, learning_curve
from posecore.io.dataset import read_dataset
from posecore.train.config import ModelConfig, TrainConfig

dataset = read_dataset(snakemake.input.dataset[0])
sizes = curve_sizes(snakemake.params.sizes, len(dataset.indices("train")))
train_config = TrainConfig.from_dict(snakemake.params.train, "config")
curve = learning_curve(
    dataset,
    ModelConfig.from_dict(snakemake.params.model, "config"),
    train_config,
    sizes,
    Path(snakemake.output.curve).parent,
    seed=train_config.seed,
)
print(curve.to_string(index=False), file=sys.stderr)
