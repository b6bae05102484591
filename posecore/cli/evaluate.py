"""`posecore evaluate MODEL DATASET --out DIR`: per-keypoint errors of a model on a dataset split."""

from __future__ import annotations

import argparse
from pathlib import Path

from posecore.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand."""
    parser = subparsers.add_parser("evaluate", help="errors of an exported model on a training dataset split")
    parser.add_argument("model", type=Path, help="exported model (model.pt)")
    parser.add_argument("dataset", type=Path, help="training dataset (.h5)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (metrics.json, predictions.parquet)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="split to evaluate")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, evaluate, write, and print the overall and per-keypoint RMSE."""
    from posecore.evaluate import evaluate, write_evaluation
    from posecore.io.dataset import read_dataset
    from posecore.models import load_model

    loaded = load_model(args.model, device=args.device)
    dataset = read_dataset(args.dataset)
    if tuple(loaded.meta.keypoint_names) != tuple(dataset.keypoint_names):
        raise InputError(
            args.dataset,
            f"keypoints {list(dataset.keypoint_names)} differ from the model's {list(loaded.meta.keypoint_names)}",
            "key keypoint_names",
        )
    if len(dataset.indices(args.split)) == 0:
        raise InputError(args.dataset, f"no {args.split!r} frames to evaluate", "key split")
    result = evaluate(loaded, dataset, split=args.split, device=args.device, batch_size=args.batch_size)
    metrics_path, _ = write_evaluation(result, args.out)
    summary = f"{result.n_labeled} labeled points in {result.n_frames} frames"
    print(f"{args.split}: RMSE {result.rmse_px:.3f} px over {summary}")
    for name, stats in result.per_keypoint.items():
        print(f"  {name}: {stats['rmse_px']:.3f} px ({stats['n_labeled']} labeled)")
    print(f"metrics: {metrics_path}")
    return 0
