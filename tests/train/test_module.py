import math

import pytest
import torch

from posecore.train.module import PoseModule, keypoint_errors, masked_mse
from posecore.train.targets import confidence_maps


def test_loss_ignores_whatever_sits_under_a_masked_keypoint():
    torch.manual_seed(0)
    targets, mask = confidence_maps(torch.tensor([[[9.0, 7.0], [float("nan")] * 2]]), (6, 6), 4, 2.0)
    outputs = [torch.rand(1, 2, 6, 6, requires_grad=True) for _ in range(2)]
    loss = masked_mse(outputs, targets, mask)

    other_outputs = [o.detach().clone() for o in outputs]
    for o in other_outputs:
        o[0, 1] = torch.randn(6, 6) * 100
    other_targets = targets.clone()
    other_targets[0, 1] = float("nan")
    assert torch.allclose(masked_mse(other_outputs, other_targets, mask), loss)

    loss.backward()
    for o in outputs:
        assert o.grad[0, 1].abs().sum() == 0 and o.grad[0, 0].abs().sum() > 0
    expected = sum(((o.detach()[0, 0] - targets[0, 0]) ** 2).mean() for o in outputs)
    assert torch.allclose(loss, expected)


def test_loss_with_nothing_labeled_is_zero():
    targets, mask = confidence_maps(torch.full((2, 3, 2), float("nan")), (4, 4), 4, 2.0)
    assert masked_mse([torch.rand(2, 3, 4, 4)], targets, mask) == 0


def test_keypoint_errors_are_in_image_pixels_over_labeled_points():
    maps, _ = confidence_maps(torch.tensor([[[10.0, 6.0], [20.0, 14.0]]]), (8, 8), 4, 2.0)
    labels = torch.tensor([[[13.0, 10.0], [float("nan"), 3.0]]])
    errors, labeled = keypoint_errors(maps, labels, 4)
    assert labeled.tolist() == [[True, False]]
    assert math.isclose(float(errors[0, 0]), 5.0, abs_tol=0.05)


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_module_steps_and_saves_its_hyperparameters():
    module = PoseModule("stacked_densenet", {"growth_rate": 8, "n_transitions": 1}, 2, 3, image_size=(30, 30))
    assert module.hparams.hyperparameters == {"growth_rate": 8, "n_transitions": 1}
    keypoints = torch.tensor([[[10.0, 12.0], [float("nan")] * 2]] * 2)
    maps, mask = confidence_maps(keypoints, (8, 8), 4, 2.0)
    batch = {"image": torch.randn(2, 3, 32, 32), "maps": maps, "mask": mask, "keypoints": keypoints}
    loss = module.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert module.map_size == (8, 8)
