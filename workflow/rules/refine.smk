# The labeling loop: outlier frames picked from the trajectories, in DeepLabCut's layout, for
# the next labeling round (correct them, list the corrected labels in dataset.labels, rerun).


rule extract_outliers:
    input:
        trajectories=rules.aggregate.output.trajectories,
        video=video_path,
        probe=rules.probe_video.output.probe,
    output:
        folder=directory("results/labeling/refine/{model}/{video}"),
    log:
        "logs/extract_outliers/{model}/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=30,
    params:
        outliers=config["outliers"],
        skeleton=config["dataset"]["skeleton"],
    script:
        "../scripts/extract_outliers.py"
