import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.video import probe

probe(snakemake.input.video).write_json(snakemake.output.probe)
