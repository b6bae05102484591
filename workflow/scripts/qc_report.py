import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.qc.archive import ArchiveConfig
from posecore.qc.report import build_report

# `partial` says which trajectories the rule takes as input (common.smk), not how the report reads them.
settings = {key: value for key, value in snakemake.params.qc.items() if key != "partial"}
build_report(
    Path(snakemake.output.html),
    model_name=snakemake.wildcards.model,
    trajectories_dir=Path(snakemake.params.trajectories_dir),
    probe_jsons=[Path(p) for p in snakemake.input.probes],
    videos=list(snakemake.params.videos),
    dataset_h5=Path(snakemake.input.dataset[0]),
    metrics_json=Path(snakemake.input.metrics),
    predictions_parquet=Path(snakemake.input.predictions),
    training_csv=Path(snakemake.input.curves),
    logs_dir=Path(snakemake.params.logs_dir),
    benchmarks_dir=Path(snakemake.params.benchmarks_dir),
    figures_dir=Path(snakemake.output.figures),
    config=ArchiveConfig.from_dict(settings, "config: qc"),
)
