# The QC report of a model: its labels, its training and the archive of videos, figures as files.


rule qc_report:
    input:
        unpack(lambda wildcards: qc_report_files(wildcards.model)),
    output:
        html=report(
            "results/qc/{model}/report.html",
            caption="../report/qc.rst",
            category="Quality control",
        ),
        figures=report(
            directory("results/qc/{model}/figures"),
            patterns=["{name}.png", "{name}.mp4"],
            caption="../report/qc_figure.rst",
            category="Quality control",
            subcategory="Figures of {model}",
            labels={"model": "{model}", "figure": "{name}"},
        ),
    log:
        "logs/qc_report/{model}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=lambda wildcards: qc_report_settings(wildcards.model),
    script:
        "../scripts/qc_report.py"
