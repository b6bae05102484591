import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from pathlib import Path

from posecore.qc.archive import ArchiveConfig
from posecore.qc.report import build_report
from posecore.qc.threed import ThreeDInputs

n_rigs = len(snakemake.params.rigs)
threed = snakemake.input.threed
threed = [threed] if isinstance(threed, str) else list(threed)

build_report(
    Path(snakemake.output.html),
    model_name=snakemake.wildcards.model,
    trajectories_dir=Path(snakemake.params.trajectories_dir),
    probe_jsons=[Path(p) for p in snakemake.input.probes],
    videos=list(snakemake.params.videos),
    video_paths=dict(snakemake.params.video_paths),
    dataset_h5=Path(snakemake.input.dataset[0]),
    metrics_json=Path(snakemake.input.metrics),
    predictions_parquet=Path(snakemake.input.predictions),
    training_csv=Path(snakemake.input.curves),
    logs_dir=Path(snakemake.params.logs_dir),
    benchmarks_dir=Path(snakemake.params.benchmarks_dir),
    records_dir=Path(snakemake.params.records_dir),
    plan_tsv=Path(snakemake.input.plan),
    figures_dir=Path(snakemake.output.figures),
    config=ArchiveConfig.from_dict(snakemake.params.qc, "config: qc"),
    threed=ThreeDInputs(
        calibrations=dict(
            zip(snakemake.params.rigs, zip(threed[:n_rigs], threed[n_rigs : 2 * n_rigs], strict=True), strict=True)
        ),
        sessions=dict(zip(snakemake.params.sessions, threed[2 * n_rigs :], strict=True)),
        skeleton=[tuple(edge) for edge in snakemake.params.skeleton],
    ),
)
