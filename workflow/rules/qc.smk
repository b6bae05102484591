# The QC report of a model: test error, scores and the trajectories of every video.


rule qc_report:
    input:
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        curves=rules.train.output.curves,
        trajectories=expand(
            "results/trajectories/{{model}}/video={video}/part-0.parquet", video=VIDEOS.index
        ),
        probes=expand(rules.probe_video.output.probe, video=VIDEOS.index),
    output:
        report(
            "results/qc/{model}/report.html",
            caption="../report/qc.rst",
            category="Quality control",
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
        score_threshold=config["qc"]["score_threshold"],
    script:
        "../scripts/qc_report.py"
