import json
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.video import probe

info = probe(snakemake.input.video)
with open(snakemake.output.probe, "w") as out:
    json.dump(info.to_dict(), out, indent=1)
