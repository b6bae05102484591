from pathlib import Path

import numpy as np
import pytest
import torch

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.models.export import LoadedModel, ModelMeta
from posecore.multi.predict import TopDownModel, TopDownPredictor, is_topdown, load_topdown, save_topdown
from posecore.multi.topdown import TopDownConfig

from .conftest import channel_model


def _blob(image: np.ndarray, channel: int, x: float, y: float, sigma: float = 2.0) -> None:
    rows, cols = np.indices(image.shape[:2])
    spot = 250 * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma**2))
    image[..., channel] = np.maximum(image[..., channel], np.rint(spot))


def test_animals_are_found_cropped_and_placed_back_in_the_frame() -> None:
    # Two animals far apart in a 120x200 frame; keypoint k drawn as a blob in channel k, the centre in channel 2.
    animals = np.array([[[40.3, 30.6], [52.8, 41.2]], [[150.4, 90.2], [139.7, 80.9]]])  # (I, K, 2)
    frame = np.zeros((120, 200, 3))
    for points in animals:
        for k, (x, y) in enumerate(points):
            _blob(frame, k, x, y)
        _blob(frame, 2, *points.mean(axis=0), sigma=4.0)
    # The centroid stand-in reads channel 2 (its first and only map): move it to the front.
    centroid_frame = frame[..., [2, 0, 1]]
    config = TopDownConfig(max_animals=3, centroid_scale=0.5)
    model = TopDownModel(channel_model(("centroid",)), channel_model(("nose", "tail")), config, 48)
    predictor = TopDownPredictor(model)
    centres, scores = predictor.find_centres(centroid_frame[None].astype(np.uint8))
    found = centres[0][np.isfinite(scores[0])]
    assert len(found) == 2
    order = np.argsort(found[:, 0])
    np.testing.assert_allclose(found[order], animals.mean(axis=1), atol=0.6)  # found on the half-size frame
    # The instance stand-in reads channels 0 and 1 of each crop (the stand-ins need different frames, so the
    # centres come from above): crops placed on the centres, keypoints moved back into the frame.
    centres = np.concatenate([animals.mean(axis=1), [[np.nan, np.nan]]])[None]  # (1, 3, 2)
    predictor.find_centres = lambda frames: (centres, np.array([[0.9, 0.8, np.nan]]))
    detections = predictor.predict(frame.astype(np.uint8)[None])
    assert detections.valid.tolist() == [[True, True, False]]
    np.testing.assert_allclose(detections.peaks[0, :2, :, :2], animals, atol=0.05)  # subpixel, back in frame pixels
    assert np.isnan(detections.peaks[0, 2]).all() and np.isnan(detections.instance_score[0, 2])
    rows = detections.table(np.array([5]), np.array([0.2]), ("nose", "tail")).to_pandas()
    assert len(rows) == 6 and set(rows.instance) == {0, 1, 2} and (rows.track == "").all()


def test_one_animal_seen_twice_is_kept_once() -> None:
    points = np.array([[30.0, 30.0], [40.0, 35.0]])
    frame = np.zeros((80, 80, 3))
    for k, (x, y) in enumerate(points):
        _blob(frame, k, x, y)
    model = TopDownModel(
        channel_model(("centroid",)), channel_model(("nose", "tail")), TopDownConfig(max_animals=2), 48
    )
    predictor = TopDownPredictor(model)
    predictor.find_centres = lambda frames: (np.array([[[35.0, 32.0], [37.0, 33.0]]]), np.array([[0.9, 0.5]]))
    detections = predictor.predict(frame.astype(np.uint8)[None])
    assert detections.valid.tolist() == [[True, False]]  # both crops found the same animal


def test_model_file_round_trip_and_errors(tmp_path: Path) -> None:
    from posecore.models.registry import build_model

    def real(names):
        model = build_model("leap", len(names), 3, filters=4)
        meta = ModelMeta("leap", {"filters": 4}, names, (64, 64), 3, (0.0,) * 3, (1.0,) * 3, model.output_stride)
        return LoadedModel(model.eval(), meta, sha256="")

    path = tmp_path / "model.pt"
    save_topdown(path, real(("centroid",)), real(("nose", "tail")), TopDownConfig(max_animals=4), 96)
    assert is_topdown(path)
    loaded = load_topdown(path)
    assert loaded.crop_size == 96 and loaded.config.max_animals == 4 and loaded.keypoint_names == ("nose", "tail")
    from posecore.models.export import load_model

    with pytest.raises(InputError, match="'posecore-topdown' file, not one model"):
        load_model(path)
    with pytest.raises(InputError, match="not a top-down model"):
        torch.save({"format": "posecore-model"}, tmp_path / "single.pt")
        load_topdown(tmp_path / "single.pt")
    assert not is_topdown(tmp_path / "single.pt")
    assert trajectories.MULTI_ANIMAL_SCHEMA.names[-3:] == ["track", "instance_score", "swap_risk"]
