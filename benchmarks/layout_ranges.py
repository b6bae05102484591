"""How often true poses break the layout prior's ranges, against the number of training frames.

    PYTHONPATH=. .venv/bin/python benchmarks/layout_ranges.py

For each dataset in ../shared/data (the fixed split of `benchmarks/accuracy.py`), the offset
ranges (`posecore.ops.layout.offset_ranges`) are learned from n training frames drawn with a
fixed seed, and the labels of the validation and test frames are checked against them as the
decoder checks peaks (`_bounds` at a stride of 4 pixels, `_broken`). A true pose that breaks a
range is one the prior may move away from; with few training frames the labels' range is
narrower than the animal's, which `offset_ranges` widens for. Prints the ranges, the mean
number each held-out frame breaks, and the share of held-out frames that break any.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from accuracy import DATA, DATASETS, load

from posecore.ops.layout import _bounds, _broken, offset_ranges

STRIDE = 4


def main() -> None:
    """Print one row per dataset and number of training frames."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the datasets (default ../shared/data)")
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 20, 40, 0], help="training frames (0: all)")
    args = parser.parse_args()
    print(f"{'dataset':>16} {'frames':>6} {'ranges':>6} {'broken per frame':>16} {'frames breaking any':>19}")
    for name in DATASETS:
        dataset = load(name, args.data)
        train = dataset.indices("train")
        held_out = np.concatenate([dataset.indices("val"), dataset.indices("test")])
        labels = torch.tensor(dataset.keypoints[held_out] / STRIDE, dtype=torch.float32)  # (N, K, 2) map cells
        for n in args.frames:
            chosen = np.random.default_rng(0).choice(train, n, replace=False) if 0 < n < len(train) else train
            ranges = offset_ranges(dataset.keypoints[chosen])
            low, high = _bounds(ranges, labels.shape[1], STRIDE, labels.device)
            broken = _broken(labels, low, high).flatten(1).sum(dim=1).numpy() // 2  # (N,) each range once
            print(f"{name:>16} {len(chosen):>6} {len(ranges):>6} {broken.mean():>16.2f} {np.mean(broken > 0):>19.2f}")


if __name__ == "__main__":
    main()
