# Video probing and frame extraction for labeling.


rule probe_video:
    input:
        video=video_path,
    output:
        probe="results/videos/{video}.json",
    log:
        "logs/probe_video/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=10,
    script:
        "../scripts/probe_video.py"


rule extract_frames:
    input:
        video=video_path,
        probe=rules.probe_video.output.probe,
    output:
        frames=directory("results/labeling/{video}/images"),
        table="results/labeling/{video}/frames.tsv",
    log:
        "logs/extract_frames/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=30,
    params:
        n_frames=config["extract_frames"]["n_frames"],
        method=config["extract_frames"]["method"],
        kmeans={
            key: config["extract_frames"][key]
            for key in ("seed", "max_candidates", "downsample_width", "pca_components")
        },
    script:
        "../scripts/extract_frames.py"
