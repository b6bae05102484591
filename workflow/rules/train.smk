# Training and evaluation of the model named in the config.


rule train:
    input:
        dataset=expand(rules.assemble_dataset.output.dataset, dataset=DATASET),
    output:
        model="results/models/{model}/model.pt",
        checkpoint=f"results/models/{{model}}/{TRAINED}checkpoints/best.ckpt",
        curves=f"results/models/{{model}}/{TRAINED}metrics.csv",
        summary=f"results/models/{{model}}/{TRAINED}training.json",
    log:
        "logs/train/{model}.log",
    benchmark:
        "benchmarks/train/{model}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=config["gpus"],
    params:
        model=MODEL_CONFIG,
        train=config["train"],
        animals=config["animals"],
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        model=rules.train.output.model,
        dataset=expand(rules.assemble_dataset.output.dataset, dataset=DATASET),
    output:
        metrics="results/models/{model}/eval/metrics.json",
        predictions="results/models/{model}/eval/predictions.parquet",
    log:
        "logs/evaluate/{model}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/evaluate.py"


# Optional, not among the default targets (it trains the model once per size):
#   snakemake results/models/<model>/learning_curve/learning_curve.csv
# Test error against the number of training frames (LEAP's Fig. 2): how many frames to label.
rule learning_curve:
    input:
        dataset=expand(rules.assemble_dataset.output.dataset, dataset=DATASET),
    output:
        curve="results/models/{model}/learning_curve/learning_curve.csv",
        figure="results/models/{model}/learning_curve/learning_curve.png",
    log:
        "logs/learning_curve/{model}.log",
    benchmark:
        "benchmarks/learning_curve/{model}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 720 * attempt,
        gpu=config["gpus"],
    params:
        model=MODEL_CONFIG,
        train=config["train"],
        sizes=config["learning_curve"]["sizes"],
    script:
        "../scripts/learning_curve.py"
