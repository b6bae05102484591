import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import traceback

from posecore.io.video import probe_to_json

# A video that cannot be probed gets its error recorded in place of its probe (logged here):
# it then fails alone, in the jobs that need its frames, and the rest of the archive goes on.
error = probe_to_json(snakemake.input.video, snakemake.output.probe)
if error is not None:
    traceback.print_exception(error, file=sys.stderr)
