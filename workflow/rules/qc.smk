# The QC report of a model: its labels, its training and the archive of videos, figures as files.


rule qc_report:
    input:
        dataset=expand(rules.assemble_dataset.output.dataset, dataset=DATASET),
        metrics=rules.evaluate.output.metrics,
        predictions=rules.evaluate.output.predictions,
        curves=rules.train.output.curves,
        trajectories=expand(
            "results/trajectories/{{model}}/video={video}/part-0.parquet", video=VIDEOS.index
        ),
        probes=expand(rules.probe_video.output.probe, video=VIDEOS.index),
        plan=ancient(rules.plan_inference.output.plan),
        # Multi-camera 3D (empty for a single-camera archive): calibrations, 3D trajectories.
        threed=lambda wildcards: threed_outputs(wildcards.model),
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
        videos=VIDEOS.index.tolist(),
        video_paths=VIDEO_PATHS,
        trajectories_dir=lambda wildcards: f"results/trajectories/{wildcards.model}",
        logs_dir="logs",
        benchmarks_dir="benchmarks",
        records_dir=lambda wildcards: f"results/predictions/{wildcards.model}/jobs",
        qc=config["qc"],
        rigs=list(RIGS),
        sessions=list(SESSIONS),
        skeleton=config["dataset"].get("skeleton", []),
    script:
        "../scripts/qc_report.py"
