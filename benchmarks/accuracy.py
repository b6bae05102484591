"""Test accuracy and training time of every model family on the real labeled datasets.

    python benchmarks/accuracy.py --shipped                  # config/config.yaml as shipped: what a user gets
    python benchmarks/accuracy.py --shipped --epochs 40      # the same with an epoch budget (repeatable)
    python benchmarks/accuracy.py --against-recipe --epochs 500 --minutes 0  # the two side by side, field by field
    python benchmarks/accuracy.py --against-recipe --epochs 3 --minutes 0 --train-both  # ... and trained: the same bits
    python benchmarks/accuracy.py --models default          # the config's model, each dataset's recipe
    python benchmarks/accuracy.py --quick                    # tiny models, 2 epochs: proves the path end to end
    python benchmarks/accuracy.py --models default --seed 1  # another training seed, the same split
    python benchmarks/accuracy.py --out results/bench        # the full comparison (a GPU machine: hours on a CPU)
    python benchmarks/accuracy.py --models stacked_densenet default  # DeepPoseKit's network beside the default
    python benchmarks/accuracy.py --imagenet --models resnet_deconv  # DeepLabCut's, from ImageNet weights
    python benchmarks/accuracy.py --resnet-weights resnet50.pth --models resnet_deconv  # the same, offline

For each dataset in ../shared/data (dlc-openfield, lp-mirror-mouse) the frames are split once
with a fixed seed: 10% test, 10% validation, 80% training (`posecore.io.assemble.SplitConfig`).
Each model is trained with `posecore.train.train_model` (best checkpoint on val/rmse_px), then
evaluated on the test frames with `posecore.evaluate.evaluate` (the inference path). Prints the
test RMSE per keypoint and overall, median, 90th percentile, PCK@5px and the training wall time;
with --out, also each run's model, metrics and prediction figure, and `accuracy.csv`.

--shipped trains config/config.yaml's model with its `train:` section as shipped: only the
labels, keypoints, skeleton and swap pairs are the dataset's (`DATASETS`), and what the
recipes chose by hand (crops, flips, epochs) is decided from the labels (`posecore.train.auto`)
and by the time budget. Without it, each dataset trains with its recipe below.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pandas as pd
import torch
import yaml

from posecore.evaluate import evaluate, plot_predictions
from posecore.hugepages import restart_with_huge_pages
from posecore.io.assemble import SplitConfig, assemble_dataset
from posecore.io.dataset import TrainingDataset
from posecore.io.labels import read_labels
from posecore.models import load_model
from posecore.train import ModelConfig, TrainConfig, train_model
from posecore.train.auto import resolve_auto

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SPLIT = SplitConfig(val_fraction=0.1, test_fraction=0.1, seed=0)

# (label files, skeleton, left/right swap pairs, recipe changes) per dataset; --shipped uses the
# first three only, and `posecore.train.auto` decides the same crops and flips. Openfield's mouse
# is small in a 640x480 arena, seen from above in any direction: crops of 256 px train four
# times faster, and flips make true new poses. Mirror-mouse's mouse is head-fixed on a wheel and
# always faces right, and it fills its 396x406 frame: trained with flips on crops, the model mixed
# up the two ends of the mouse (noses found at the tail, tails at the nose: RMSE 79 px, median
# 4.8 px), so it trains without flips, on crops for the first 60% of the run (ten-minute runs:
# median error 5.8 px against 18 px on whole frames throughout) and on whole frames after
# them, where all 17 keypoints and both views are in view at once. Each gets the epochs that
# the 2-core CPU trains in about 27 minutes, so that the 30-minute limit is a safeguard and a
# run repeats with its seed (`posecore.train.module.PoseModule._progress`).
DATASETS = {
    "dlc-openfield": (
        "dlc-openfield/labeled-data/*/CollectedData_*.csv",
        (("snout", "leftear"), ("snout", "rightear"), ("leftear", "tailbase"), ("rightear", "tailbase")),
        (("leftear", "rightear"),),
        {"crop_size": 256, "max_epochs": 500},
    ),
    "lp-mirror-mouse": (
        "lp-mirror-mouse/CollectedData.csv",
        (("nose_top", "tailBase_top"), ("tailBase_top", "tailMid_top"), ("nose_bot", "tailBase_bot")),
        tuple(
            (f"{left}_{view}", f"{right}_{view}")
            for view in ("top", "bot")
            for left, right in (("paw1LH", "paw4RH"), ("paw2LF", "paw3RF"))
        ),
        {"crop_size": 256, "crop_until": 0.6, "flip": False, "max_epochs": 420},
    ),
}

# Full-size models, as the papers use them, and tiny ones for --quick; "default" is the
# architecture and hyperparameters of config/config.yaml, what a user gets without choosing.
# stacked_densenet, stacked_hourglass, leap and resnet_deconv are the published networks layer
# for layer (benchmarks/fidelity.py): DeepPoseKit's at the settings of its paper (2 stacks,
# growth rate 32, as benchmarks/inference.py times it; 2 hourglasses of 256 filters), LEAP's
# with BatchNorm (which trains from scratch in the time), DeepLabCut's ResNet-50.
CONFIG = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
MODELS = {
    "default": (
        {"architecture": CONFIG["model"]["architecture"], **CONFIG["model"]["hyperparameters"]},
        {"architecture": CONFIG["model"]["architecture"], "n_stacks": 1, "growth_rate": 8, "n_transitions": 2},
    ),
    "stacked_densenet": ({"n_stacks": 2, "growth_rate": 32}, {"n_stacks": 1, "growth_rate": 4, "n_transitions": 2}),
    "stacked_hourglass": ({"n_stacks": 2}, {"n_stacks": 1, "filters": 8, "n_transitions": 2}),
    "leap": ({"filters": 64, "batch_norm": True}, {"filters": 4, "convs_per_block": 1, "batch_norm": True}),
    "resnet_deconv": ({"depth": 50}, {"depth": 18}),
    "densenet_lite": ({"n_stacks": 2, "growth_rate": 32}, {"n_stacks": 1, "growth_rate": 8, "n_transitions": 2}),
    "hourglass_lite": ({"n_stacks": 2, "n_features": 128}, {"n_stacks": 1, "n_features": 8, "n_transitions": 2}),
}

FULL = TrainConfig(
    max_epochs=300,  # DATASETS give each dataset its own
    batch_size=8,
    learning_rate=1e-3,
    sigma_px=5.0,
    flip=True,
    rotation_deg=15.0,
    scale=0.1,
    translation_px=16.0,
    brightness=0.1,
    contrast=0.2,
    early_stopping_patience=0,  # the time limit bounds the run, and the cosine schedule ends with it
    crop_background=0.25,
    crop_until=1.0,
    max_minutes=30.0,
    peak_weight=20.0,
)
QUICK = TrainConfig(max_epochs=2, batch_size=4, learning_rate=1e-3, sigma_px=5.0, accelerator="cpu", rotation_deg=10.0)


def load(name: str, data: Path = DATA) -> TrainingDataset:
    """Assemble one dataset from its label files (under `data`) with the fixed split."""
    pattern, skeleton, swap_pairs, _ = DATASETS[name]
    files = sorted(data.glob(pattern))
    if not files:
        raise SystemExit(f"no label files match {data / pattern}: is the data folder (--data) there?")
    names = read_labels(files[0]).keypoint_names
    return assemble_dataset(files, names, skeleton, swap_pairs, SPLIT)


def model_and_dataset(description: str) -> tuple[argparse.Namespace, TrainingDataset]:
    """Arguments of a script that studies a model from this one (DATASET MODEL [--data DIR]), and the dataset."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("model", type=Path, help="a model file trained on that dataset by benchmarks/accuracy.py")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the datasets (default ../shared/data)")
    args = parser.parse_args()
    return args, load(args.dataset, args.data)


def train_config(dataset_name: str, args: argparse.Namespace, shipped: bool) -> TrainConfig:
    """The TrainConfig a run trains with: config/config.yaml as shipped, or the dataset's recipe.

    --quick, --epochs, --minutes, --crop, --seed and --accelerator apply to both.
    """
    if shipped:
        config = replace(TrainConfig.from_dict(CONFIG["train"], "config/config.yaml"), accelerator=args.accelerator)
    else:
        config = QUICK if args.quick else replace(FULL, accelerator=args.accelerator, **DATASETS[dataset_name][3])
    if args.epochs:
        config = replace(config, max_epochs=args.epochs)
    if args.minutes is not None:
        config = replace(config, max_minutes=args.minutes)
    if args.crop is not None:
        config = replace(config, crop_size=args.crop)
    return replace(config, seed=args.seed)


def against_recipe(dataset_name: str, args: argparse.Namespace) -> list[str]:
    """Print every TrainConfig field of the shipped config, as decided from the dataset's labels, beside the recipe's.

    Returns the fields that differ. The shipped config's "auto" settings are resolved the way
    `train_model` resolves them (`posecore.train.auto.resolve_auto` on the training frames).
    """
    dataset = load(dataset_name, args.data)
    train = dataset.indices("train")
    shipped, decisions = resolve_auto(
        train_config(dataset_name, args, shipped=True),
        dataset.keypoints[train],
        dataset.image_sizes[train],
        dataset.keypoint_names,
        dataset.swap_pairs,
    )
    recipe = train_config(dataset_name, args, shipped=False)
    decided = {decision.key for decision in decisions}
    differ = []
    print(f"\n{dataset_name}: config/config.yaml as shipped (decided from the labels) against the recipe")
    print(f"  {'field':>24}  {'shipped':>12}  {'recipe':>12}")
    for f in fields(TrainConfig):
        a, b = getattr(shipped, f.name), getattr(recipe, f.name)
        same = a == b and type(a) is type(b)
        differ += [] if same else [f.name]
        note = ("" if same else "  DIFFERS") + ("  (auto)" if f.name in decided else "")
        print(f"  {f.name:>24}  {a!s:>12}  {b!s:>12}{note}")
    model = {"architecture": CONFIG["model"]["architecture"], **CONFIG["model"]["hyperparameters"]}
    print(f"  model (both): {model}")
    print(f"  {len(differ)} fields differ{': ' + ', '.join(differ) if differ else ''}")
    if args.train_both:
        differ += train_both(dataset_name, dataset, args)
    return differ


def train_both(dataset_name: str, dataset: TrainingDataset, args: argparse.Namespace) -> list[str]:
    """Train the shipped config and the recipe (same epochs, seed, model) and compare losses and weights bit for bit.

    Returns what differs ("metrics", "weights"), empty when the two runs are the same run.
    """
    model = ModelConfig(CONFIG["model"]["architecture"], dict(CONFIG["model"]["hyperparameters"]))
    runs = {}
    for name, shipped in (("shipped", True), ("recipe", False)):
        out = args.out / "against_recipe" / dataset_name / name
        runs[name] = train_model(dataset, model, train_config(dataset_name, args, shipped), out, source=dataset_name)
    metrics = [pd.read_csv(runs[name].metrics_path) for name in runs]
    weights = [load_model(runs[name].model_path).model.state_dict() for name in runs]
    largest = max(float((weights[0][k].float() - weights[1][k].float()).abs().max()) for k in weights[0])
    same_metrics = metrics[0].equals(metrics[1])
    losses = metrics[0]["train/loss"].dropna().tolist() if "train/loss" in metrics[0] else []
    print(f"  trained {runs['shipped'].epochs} epochs each: train/loss per epoch {[f'{v:.6f}' for v in losses]}")
    print(f"  metrics.csv {'identical' if same_metrics else 'DIFFER'}; largest weight difference {largest:g}")
    return (["metrics"] if not same_metrics else []) + (["weights"] if largest else [])


def run(dataset_name: str, model_name: str, args: argparse.Namespace, out: Path) -> dict:
    """Train, evaluate on the test frames, print and return one row."""
    dataset = load(dataset_name, args.data)
    full, quick = MODELS[model_name]
    hyperparameters = dict(quick if args.quick else full)
    architecture = hyperparameters.pop("architecture", model_name)
    if architecture == "resnet_deconv" and args.resnet_weights:
        hyperparameters["weights_path"] = str(args.resnet_weights)
    if architecture == "resnet_deconv" and args.imagenet:
        hyperparameters["pretrained"] = "imagenet"
    config = train_config(dataset_name, args, shipped=args.shipped)
    run_dir = out / dataset_name / model_name
    start = time.perf_counter()
    trained = train_model(dataset, ModelConfig(architecture, hyperparameters), config, run_dir, source=dataset_name)
    wall = time.perf_counter() - start
    device = "cuda" if torch.cuda.is_available() and args.accelerator != "cpu" else "cpu"
    result = evaluate(load_model(trained.model_path), dataset, "test", device=device)
    plot_predictions(dataset, result, run_dir / "test_predictions.png")
    errors = result.errors["error_px"].dropna()
    print(f"\n{dataset_name} / {model_name}: {trained.epochs} epochs, training {wall:.0f} s ({device})")
    for decision in trained.summary.decisions:
        print(f"  train.{decision['key']}: {decision['value']} (auto): {decision['reason']}")
    for warning in trained.summary.warnings:
        print(f"  WARNING: {warning['message']}")
    print(
        f"  test RMSE {result.rmse_px:.2f} px over {result.n_labeled} points in {result.n_frames} frames; "
        f"median {errors.median():.2f}, p90 {errors.quantile(0.9):.2f}, PCK@5px {result.pck_all[5.0]:.2f}"
    )
    for name, stats in result.per_keypoint.items():
        print(f"    {name:>14}: RMSE {stats['rmse_px']:7.2f} px  ({stats['n_labeled']} labeled)")
    return {
        "dataset": dataset_name,
        "model": model_name,
        "rmse_px": result.rmse_px,
        "median_px": float(errors.median()),
        "p90_px": float(errors.quantile(0.9)),
        "pck_5px": result.pck_all[5.0],
        "train_seconds": wall,
        "epochs": trained.epochs,
        "best_epoch": trained.summary.best_epoch,
        "warnings": " ".join(warning["kind"] for warning in trained.summary.warnings),
        **{f"rmse_px/{k}": v["rmse_px"] for k, v in result.per_keypoint.items()},
    }


def main() -> None:
    """Parse arguments, run every (dataset, model) pair, print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 epochs, CPU: an end-to-end check")
    parser.add_argument(
        "--shipped", action="store_true", help="train as config/config.yaml ships, no per-dataset recipe"
    )
    parser.add_argument(
        "--against-recipe",
        action="store_true",
        help="print the shipped config's settings, decided from each dataset's labels, beside its recipe's",
    )
    parser.add_argument(
        "--train-both",
        action="store_true",
        help="with --against-recipe and --epochs: train both and compare their losses and weights bit for bit",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, help="override max_epochs")
    parser.add_argument(
        "--minutes", type=float, help="stop each training after this many minutes (default 30; 0: none, with --epochs)"
    )
    parser.add_argument("--crop", type=int, help="training crop size in pixels (default: the dataset's; 0: whole)")
    parser.add_argument("--accelerator", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, shuffling, augmentation)")
    parser.add_argument("--resnet-weights", type=Path, help="torchvision-layout ResNet state_dict (.pth) to start from")
    parser.add_argument(
        "--imagenet", action="store_true", help="resnet_deconv from torchvision's ImageNet weights (torch hub cache)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/accuracy"), help="output folder")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the datasets (default ../shared/data)")
    args = parser.parse_args()
    if args.shipped:
        if args.quick or args.models not in (list(MODELS), ["default"]):
            parser.error("--shipped trains the config's model as shipped: use it without --quick and --models")
        args.models = ["default"]
    if args.train_both and not (args.against_recipe and args.epochs):
        parser.error("--train-both trains --epochs epochs of both: use it with --against-recipe and --epochs")
    if args.against_recipe:
        differ = {d: against_recipe(d, args) for d in args.datasets}
        raise SystemExit(1 if any(differ.values()) else 0)
    restart_with_huge_pages(sys.argv)  # as posecore's command line and workflow run models
    rows = [run(d, m, args, args.out) for d in args.datasets for m in args.models]
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "accuracy.csv", index=False)
    columns = ["dataset", "model", "rmse_px", "median_px", "p90_px", "pck_5px", "train_seconds", "epochs", "warnings"]
    print("\n" + table[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
