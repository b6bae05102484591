import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging
from pathlib import Path

from posecore.threed.files import calibrate_rig, write_outputs

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
calibration = calibrate_rig(snakemake.params.rig, snakemake.params.source)
write_outputs(
    calibration,
    Path(snakemake.output.calibration),
    Path(snakemake.output.corners),
    Path(snakemake.output.summary),
)
