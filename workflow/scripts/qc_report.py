import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.qc.report import workflow_report

workflow_report(
    snakemake.output.html,
    snakemake.output.figures,
    snakemake.wildcards.model,
    dict(snakemake.input.items()),
    snakemake.params.settings,
)
