import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.infer.archive import plan_archive

plan_archive(
    dict(zip(snakemake.params.videos, snakemake.input.probes, strict=True)),
    snakemake.params.frames_per_shard,
    snakemake.params.frames_per_job,
    snakemake.output.plan,
)
