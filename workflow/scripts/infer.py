import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.infer.archive import run_planned_job

# How the job runs, which changes no row: from the config, not parameters (see the rule).
settings = snakemake.config["inference"]

run_planned_job(
    snakemake.params.shards,
    snakemake.params.video_paths,
    snakemake.input.probes,
    snakemake.input.model,
    snakemake.params.predictions,
    snakemake.output.record,
    threads=snakemake.threads,
    priors=snakemake.params.priors,
    precision=snakemake.params.precision,
    keypoints=snakemake.params.keypoints,
    config=snakemake.config,
    **{key: settings[key] for key in ("device", "decoders", "batch_size", "compile")},
)
