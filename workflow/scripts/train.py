import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.io.dataset import read_dataset
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
