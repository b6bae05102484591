import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.qc.report import build_report

build_report(
    Path(snakemake.output[0]),
    model_name=snakemake.wildcards.model,
    metrics_json=Path(snakemake.input.metrics),
    predictions_parquet=Path(snakemake.input.predictions),
    training_csv=Path(snakemake.input.curves),
    trajectories_dir=Path(snakemake.input.trajectories[0]).parent.parent,
    probe_jsons=[Path(p) for p in snakemake.input.probes],
    score_threshold=snakemake.params.score_threshold,
)
