"""RMSE of one trained model decoded with and without the single-animal prior, on each split.

    PYTHONPATH=. .venv/bin/python benchmarks/single_animal.py dlc-openfield \
        results/benchmarks/accuracy/dlc-openfield/default/model.pt

The model is a file from `benchmarks/accuracy.py` (the same fixed split). Its confidence maps are
decoded with each map's global maximum (margin 0: what models before the prior got) and with
`posecore.ops.single_animal.peaks_on_the_animal` at several margins over the training labels'
extent (`label_extent`, recomputed here, so models saved before `extent_px` existed work too);
`MARGIN` is what inference uses. Prints RMSE, median, 90th percentile and largest error in pixels.
"""

from __future__ import annotations

import numpy as np
from accuracy import model_and_dataset

from posecore.geometry import map_to_image
from posecore.models import load_model
from posecore.ops.peaks import find_peaks
from posecore.ops.single_animal import MARGIN, label_extent, peaks_on_the_animal
from posecore.predict import Predictor


def main() -> None:
    """Decode each split's frames both ways and print the table."""
    args, dataset = model_and_dataset(__doc__.splitlines()[0])
    predictor = Predictor(load_model(args.model), batch_size=4)
    extent = label_extent(dataset.keypoints[dataset.indices("train")])
    print(f"{args.dataset}: the animal's extent in the training labels {extent:.1f} px; inference's margin {MARGIN}")
    print(f"{'split':>5} {'margin':>6} {'RMSE':>8} {'median':>7} {'p90':>7} {'max':>7} {'points':>6}")
    for split in ("train", "val", "test"):
        frames = dataset.indices(split)
        maps = [predictor.maps(dataset.images[frames[i : i + 4]]) for i in range(0, len(frames), 4)]
        for margin in sorted({0.0, 1.0, MARGIN, 1.5}):
            xy = []
            for batch in maps:  # (B, K, h, w) each
                peaks = peaks_on_the_animal(batch, find_peaks(batch.contiguous()), margin * extent / predictor.stride)
                xy.append(map_to_image(peaks[..., :2], predictor.stride).numpy())  # (B, K, 2) image pixels
            errors = np.linalg.norm(np.concatenate(xy) - dataset.keypoints[frames], axis=-1)
            errors = errors[np.isfinite(errors)]  # labeled points only
            print(
                f"{split:>5} {margin:>6} {np.sqrt(np.mean(errors**2)):>8.2f} {np.median(errors):>7.2f} "
                f"{np.quantile(errors, 0.9):>7.2f} {errors.max():>7.1f} {errors.size:>6}"
            )


if __name__ == "__main__":
    main()
