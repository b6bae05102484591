import copy

import numpy as np
import pytest

from posecore.multi.oks import DLC_SIGMA, SLEAP_SIGMA, box_area, oks_matrix, pose_map

cocoeval = pytest.importorskip("pycocotools.cocoeval")
coco_api = pytest.importorskip("pycocotools.coco")


def _scene(rng: np.random.Generator, n_frames: int, k: int) -> tuple[list, list, list]:
    """Random labeled animals and noisy predictions (some missed, some spurious), every keypoint predicted."""
    truth, predicted, scores = [], [], []
    for _ in range(n_frames):
        g = int(rng.integers(0, 4))
        centres = rng.uniform(50, 400, (g, 1, 2))
        animals = centres + rng.normal(0, 30, (g, k, 2))
        animals[rng.random((g, k)) < 0.15] = np.nan  # unlabeled keypoints
        keep = rng.random(g) < 0.85
        guesses = np.nan_to_num(animals[keep], nan=200.0) + rng.normal(
            0, rng.uniform(0.1, 3.0), (int(keep.sum()), k, 2)
        )
        spurious = rng.uniform(0, 450, (int(rng.integers(0, 2)), k, 2))
        truth.append(animals)
        predicted.append(np.concatenate([guesses, spurious]))
        scores.append(rng.permutation(len(predicted[-1])) / 10 + rng.uniform(0, 0.05))  # no ties
    return truth, predicted, scores


def _pycocotools_map(truth, predicted, scores, sigma: float, k: int) -> tuple[float, float]:
    images, annotations, results = [], [], []
    for i, (animals, guesses, score) in enumerate(zip(truth, predicted, scores, strict=True)):
        images.append({"id": i, "width": 500, "height": 500, "file_name": f"{i}.png"})
        for animal in animals:
            labeled = np.isfinite(animal).all(-1)
            if not labeled.any():
                continue
            triples = np.concatenate([np.nan_to_num(animal), np.where(labeled, 2, 0)[:, None]], axis=1)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                "keypoints": triples.reshape(-1).tolist(), "num_keypoints": int(labeled.sum()),
                "area": float(box_area(animal[None])[0]), "bbox": [0, 0, 1, 1],
            })  # fmt: skip
        for guess, s in zip(guesses, score, strict=True):
            triples = np.concatenate([guess, np.ones((k, 1))], axis=1)
            results.append(
                {"image_id": i, "category_id": 1, "keypoints": triples.reshape(-1).tolist(), "score": float(s)}
            )
    gt = coco_api.COCO()
    gt.dataset = {"images": images, "annotations": annotations,
                  "categories": [{"id": 1, "name": "animal", "keypoints": [f"k{j}" for j in range(k)]}]}  # fmt: skip
    gt.createIndex()
    dt = gt.loadRes(copy.deepcopy(results))
    evaluation = cocoeval.COCOeval(gt, dt, iouType="keypoints")
    evaluation.params.kpt_oks_sigmas = np.full(k, sigma)
    evaluation.params.maxDets = [100]
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, 0, 0, 0]  # (T, R): all areas, the one maxDets
    recall = evaluation.eval["recall"][:, 0, 0, 0]
    return float(precision.mean()), float(recall.mean())


@pytest.mark.parametrize(("seed", "sigma"), [(0, SLEAP_SIGMA), (1, DLC_SIGMA), (2, 0.05)])
def test_map_equals_pycocotools(seed: int, sigma: float) -> None:
    k = 5
    truth, predicted, scores = _scene(np.random.default_rng(seed), 40, k)
    ours = pose_map(truth, predicted, scores, sigma=sigma)
    reference_map, reference_mar = _pycocotools_map(truth, predicted, scores, sigma, k)
    assert 0.05 < ours.map < 0.95  # a test that can tell: neither trivially 0 nor 1
    assert ours.map == pytest.approx(reference_map, abs=1e-9)
    assert ours.mar == pytest.approx(reference_mar, abs=1e-9)


def test_oks_of_a_known_offset() -> None:
    truth = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 20.0], [np.nan, np.nan]]])  # box 10 x 20 = area 200
    predicted = truth.copy()
    predicted[0, 0] += (3.0, 4.0)  # 5 px off
    predicted[0, 3] = (99.0, 99.0)  # unlabeled: does not count
    expected = (np.exp(-25.0 / (2 * 200 * (2 * 0.1) ** 2)) + 2.0) / 3
    assert oks_matrix(truth, predicted, 0.1)[0, 0] == pytest.approx(expected)
    missing = predicted.copy()
    missing[0, 1] = np.nan  # a keypoint the prediction lacks counts 0
    assert oks_matrix(truth, missing, 0.1)[0, 0] == pytest.approx(expected - 1 / 3)
    assert box_area(truth, margin=10)[0] == pytest.approx(30 * 40)


def test_perfect_predictions_score_one_and_none_score_zero() -> None:
    truth = [np.array([[[1.0, 2.0], [30.0, 40.0]]]), np.zeros((0, 2, 2))]
    perfect = pose_map(truth, [truth[0], np.zeros((0, 2, 2))], [np.array([0.9]), np.zeros(0)])
    assert perfect.map == pytest.approx(1.0) and perfect.mar == 1.0 and perfect.n_truth == 1
    nothing = pose_map(truth, [np.zeros((0, 2, 2))] * 2, [np.zeros(0)] * 2)
    assert nothing.map == 0.0 and nothing.n_predicted == 0
