import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.infer.archive import aggregate_video

aggregate_video(
    snakemake.wildcards.video,
    snakemake.input.records,
    snakemake.input.probe,
    snakemake.params.predictions,
    snakemake.output.trajectories,
)
