"""`posecore train DATASET.h5 --out DIR [--config config.yaml]`: train a model and export it."""

from __future__ import annotations

import argparse
from pathlib import Path

from posecore.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    parser = subparsers.add_parser("train", help="train a pose model on a training dataset (.h5)")
    parser.add_argument("dataset", type=Path, help="training dataset written by assemble_dataset (.h5)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (model.pt, checkpoints/, metrics.csv)")
    parser.add_argument("--config", type=Path, help="YAML with optional sections 'model' and 'train'")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the dataset and config, train, and print where the model went."""
    # Imported here so that `posecore --help` and other subcommands do not load Lightning.
    from posecore.io.dataset import read_dataset
    from posecore.train import ModelConfig, TrainConfig, load_config, train_model

    dataset = read_dataset(args.dataset)
    if dataset.multi_animal:
        raise InputError(
            args.dataset,
            "holds several animals per frame: train its top-down model with the workflow (animals.max_animals) "
            "or posecore.multi.train.train_topdown",
        )
    model_config, train_config = load_config(args.config) if args.config else (ModelConfig(), TrainConfig())
    for split in ("train", "val"):
        if len(dataset.indices(split)) == 0:
            raise InputError(args.dataset, f"no {split!r} frames; training needs both 'train' and 'val'", "key split")
    result = train_model(dataset, model_config, train_config, args.out, source=args.dataset)
    print(f"model: {result.model_path}")
    print(f"best val/rmse_px: {result.best_val_rmse_px:.3f} after {result.epochs} epochs ({result.seconds:.0f} s)")
    for decision in result.summary.decisions:
        print(f"train.{decision['key']}: {decision['value']} (auto): {decision['reason']}")
    for warning in result.summary.warnings:
        print(f"WARNING: {warning['message']}")
    return 0
