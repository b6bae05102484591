import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging

# Merges, padding and labels outside the image are reported through logging.
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

from pathlib import Path

from posecore.io.assemble import SplitConfig, assemble_dataset
from posecore.io.dataset import write_dataset
from posecore.io.history import keep_outputs

dataset = assemble_dataset(
    snakemake.input.labels,
    keypoints=snakemake.params.keypoints,
    skeleton=[tuple(edge) for edge in snakemake.params.skeleton],
    swap_pairs=[tuple(pair) for pair in snakemake.params.swap_pairs],
    split=SplitConfig(**snakemake.params.split),
    max_animals=snakemake.params.max_animals,
    unique_keypoints=snakemake.params.unique_keypoints,
)
content_hash = write_dataset(dataset, snakemake.output.dataset)
print(f"{len(dataset.images)} frames, content hash {content_hash}", file=sys.stderr)
# Kept aside, so that a failed reassembly leaves this dataset readable (posecore.io.history).
out = Path(snakemake.output.dataset)
keep_outputs([out], out.parent / "history" / snakemake.wildcards.dataset, content_hash[:12])
