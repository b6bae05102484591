# Sharded video inference and aggregation into one Parquet dataset per model.


checkpoint plan_shards:
    input:
        probe=rules.probe_video.output.probe,
    output:
        plan="results/shards/{video}.tsv",
    log:
        "logs/plan_shards/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 1000 * attempt,
        runtime=5,
    params:
        shard_size=config["inference"]["shard_size"],
    script:
        "../scripts/plan_shards.py"


rule check_model:
    input:
        model=rules.train.output.model,
    output:
        checked="results/models/{model}/keypoints.checked",
    log:
        "logs/check_model/{model}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        keypoints=config["dataset"]["keypoints"],
    script:
        "../scripts/check_model.py"


rule infer_shard:
    input:
        model=rules.train.output.model,
        checked=rules.check_model.output.checked,
        video=video_path,
        probe=rules.probe_video.output.probe,
        plan=rules.plan_shards.output.plan,
    output:
        shard="results/predictions/{model}/{video}/shard-{shard}.parquet",
    log:
        "logs/infer_shard/{model}/{video}/{shard}.log",
    benchmark:
        "benchmarks/infer_shard/{model}/{video}/{shard}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: config["inference"]["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=config["gpus"],
    params:
        batch_size=config["inference"]["batch_size"],
        device=config["inference"]["device"],
        compile=config["inference"]["compile"],
        priors=config["inference"]["priors"],
        config=config,
        keypoints=config["dataset"]["keypoints"],
    script:
        "../scripts/infer_shard.py"


rule aggregate:
    input:
        shards=shard_files,
        probe=rules.probe_video.output.probe,
    output:
        trajectories="results/trajectories/{model}/video={video}/part-0.parquet",
    log:
        "logs/aggregate/{model}/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    script:
        "../scripts/aggregate.py"


# One record per batch of videos (common.smk's BATCHES), listing its videos. They compute
# nothing: they join the jobs of several videos, so that profiles/slurm's job groups (which
# gather connected jobs) send each batch out as one SLURM job per stage.
rule prepare_batch:
    input:
        plans=lambda wildcards: expand("results/shards/{video}.tsv", video=BATCHES[wildcards.batch]),
    output:
        record="results/jobs/prepare-{batch}.txt",
    log:
        "logs/prepare_batch/{batch}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    params:
        videos=lambda wildcards: BATCHES[wildcards.batch],
    shell:
        "printf '%s\\n' {params.videos} > {output.record} 2> {log}"


rule inference_batch:
    input:
        trajectories=lambda wildcards: expand(
            "results/trajectories/{model}/video={video}/part-0.parquet",
            model=wildcards.model,
            video=BATCHES[wildcards.batch],
        ),
    output:
        record="results/jobs/{model}/inference-{batch}.txt",
    log:
        "logs/inference_batch/{model}/{batch}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    params:
        videos=lambda wildcards: BATCHES[wildcards.batch],
    shell:
        "printf '%s\\n' {params.videos} > {output.record} 2> {log}"
