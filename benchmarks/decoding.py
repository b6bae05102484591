"""RMSE of one trained model on each split, decoded through the Predictor with and without each prior.

    PYTHONPATH=. .venv/bin/python benchmarks/decoding.py lp-mirror-mouse \
        results/benchmarks/accuracy/lp-mirror-mouse/default/model.pt

The model is a file from `benchmarks/accuracy.py` (the same fixed split). Its frames go through
`posecore.predict.Predictor`, the path evaluation and video inference share, three times: with
each map's global maximum (no priors: what models trained before them get), with the
single-animal prior (`posecore.ops.single_animal`), and with the single-animal and layout priors
(`posecore.ops.layout`), what a model trained now gets. The priors' label statistics are
recomputed from the training split, so models saved before they were stored work too. Prints
RMSE, median, 90th percentile and largest error in pixels over the labeled points, and how many
points each decoding moved from the global maxima.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from accuracy import DATA, DATASETS, load

from posecore.models import load_model
from posecore.ops.layout import offset_ranges
from posecore.ops.single_animal import label_extent
from posecore.predict import Predictor


def main() -> None:
    """Decode each split's frames three ways and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=list(DATASETS))
    parser.add_argument("model", type=Path, help="a model file trained on that dataset by benchmarks/accuracy.py")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the datasets (default ../shared/data)")
    args = parser.parse_args()
    dataset = load(args.dataset, args.data)
    loaded = load_model(args.model)
    train = dataset.keypoints[dataset.indices("train")]
    decodings = {
        "global maxima": replace(loaded.meta, extent_px=0.0, offset_ranges=()),
        "single animal": replace(loaded.meta, extent_px=label_extent(train), offset_ranges=()),
        "+ layout": replace(loaded.meta, extent_px=label_extent(train), offset_ranges=offset_ranges(train)),
    }
    print(f"{args.dataset}: {len(offset_ranges(train))} offset ranges from {len(train)} training frames")
    print(f"{'split':>5} {'decoding':>13} {'RMSE':>8} {'median':>7} {'p90':>7} {'max':>7} {'points':>6} {'moved':>5}")
    for split in ("train", "val", "test"):
        frames = dataset.indices(split)
        labels = dataset.keypoints[frames]  # (N, K, 2)
        plain = None
        for name, meta in decodings.items():
            xy = Predictor(replace(loaded, meta=meta), batch_size=8).predict(dataset.images[frames])[..., :2]
            plain = xy if plain is None else plain
            moved = int((np.abs(xy - plain) > 1e-3).any(axis=-1).sum())
            errors = np.linalg.norm(xy - labels, axis=-1)
            errors = errors[np.isfinite(errors)]  # labeled points only
            print(
                f"{split:>5} {name:>13} {np.sqrt(np.mean(errors**2)):>8.2f} {np.median(errors):>7.2f} "
                f"{np.quantile(errors, 0.9):>7.2f} {errors.max():>7.1f} {errors.size:>6} {moved:>5}"
            )


if __name__ == "__main__":
    main()
