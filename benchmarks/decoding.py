"""RMSE of one trained model on each split, decoded with and without each prior, and what decoding costs.

    PYTHONPATH=. .venv/bin/python benchmarks/decoding.py lp-mirror-mouse \
        results/benchmarks/accuracy/lp-mirror-mouse/default/model.pt

The model is a file from `benchmarks/accuracy.py` (the same fixed split). Each split's maps
(`Predictor.maps`, once) are decoded with `posecore.ops.decode.decode_peaks`, what the Predictor
runs, three ways: each map's global maximum (no priors: what models trained before them get),
with the single-animal prior (`posecore.ops.single_animal`), and with the single-animal and
layout priors (`posecore.ops.layout`), what a model trained now gets. The priors' label
statistics are recomputed from the training split, so models saved before they were stored work
too. Prints RMSE, median, 90th percentile and largest error in pixels over the labeled points,
how many points each decoding moved from the global maxima, and the median time per frame of
decoding (batches of 8 frames, on the CPU) against the model's forward pass.
"""

from __future__ import annotations

import time

import numpy as np
from accuracy import model_and_dataset

from posecore.geometry import map_to_image
from posecore.models import load_model
from posecore.ops.decode import decode_peaks
from posecore.ops.layout import offset_ranges
from posecore.ops.single_animal import label_extent
from posecore.predict import Predictor

BATCH = 8


def main() -> None:
    """Decode each split's frames three ways and print the table."""
    args, dataset = model_and_dataset(__doc__.splitlines()[0])
    predictor = Predictor(load_model(args.model), batch_size=BATCH)
    train = dataset.keypoints[dataset.indices("train")]
    extent, ranges = label_extent(train), offset_ranges(train)
    decodings = {"global maxima": (0.0, ()), "single animal": (extent, ()), "+ layout": (extent, ranges)}
    print(f"{args.dataset}: {len(ranges)} offset ranges from {len(train)} training frames")
    print(
        f"{'split':>5} {'decoding':>13} {'RMSE':>8} {'median':>7} {'p90':>7} {'max':>7} {'points':>6} "
        f"{'moved':>5} {'ms/frame':>8}"
    )
    for split in ("train", "val", "test"):
        frames = dataset.indices(split)
        labels = dataset.keypoints[frames]  # (N, K, 2)
        maps, forward = [], []
        for start in range(0, len(frames), BATCH):
            began = time.perf_counter()
            maps.append(predictor.maps(dataset.images[frames[start : start + BATCH]]))  # (B, K, h, w)
            forward.append((time.perf_counter() - began) / len(maps[-1]))
        plain = None
        for name, (extent_px, rows) in decodings.items():
            xy, seconds = [], []
            for batch in maps:
                began = time.perf_counter()
                peaks = decode_peaks(batch, predictor.stride, extent_px, rows)
                seconds.append((time.perf_counter() - began) / len(batch))
                xy.append(map_to_image(peaks[..., :2], predictor.stride).numpy())
            xy = np.concatenate(xy)  # (N, K, 2) image pixels
            plain = xy if plain is None else plain
            moved = int((np.abs(xy - plain) > 1e-3).any(axis=-1).sum())
            errors = np.linalg.norm(xy - labels, axis=-1)
            errors = errors[np.isfinite(errors)]  # labeled points only
            print(
                f"{split:>5} {name:>13} {np.sqrt(np.mean(errors**2)):>8.2f} {np.median(errors):>7.2f} "
                f"{np.quantile(errors, 0.9):>7.2f} {errors.max():>7.1f} {errors.size:>6} {moved:>5} "
                f"{1e3 * np.median(seconds):>8.2f}"
            )
        print(f"{split:>5} {'(the model)':>13} {'':>48} {1e3 * np.median(forward):>8.2f}")


if __name__ == "__main__":
    main()
