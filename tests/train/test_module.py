import math
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from posecore.train.config import AUGMENTATION_KEYS, NO_AUGMENTATION, TrainConfig
from posecore.train.module import PoseModule, keypoint_errors, load_checkpoint, masked_mse
from posecore.train.targets import confidence_maps

DATA = Path(__file__).parent / "data"


def _config(**settings) -> TrainConfig:
    """A decided config (nothing left "auto" but what `settings` says) without augmentation."""
    off = {key: getattr(NO_AUGMENTATION, key) for key in AUGMENTATION_KEYS}
    return TrainConfig(**{"max_epochs": 100, "max_minutes": 0.0, "crop_size": 0, "crop_until": 1.0, **off, **settings})


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


def test_peak_weight_counts_each_cell_by_its_target():
    targets, mask = confidence_maps(torch.tensor([[[9.0, 7.0], [float("nan")] * 2]]), (6, 6), 4, 2.0)
    outputs = [torch.rand(1, 2, 6, 6)]
    squared = (outputs[0][0, 0] - targets[0, 0]) ** 2
    weighted = masked_mse(outputs, targets, mask, peak_weight=20.0)
    assert torch.allclose(weighted, (squared * (1 + 20 * targets[0, 0])).mean())
    assert weighted > masked_mse(outputs, targets, mask)
    # A flat zero output is punished the more the peaks weigh: the pull away from flat maps.
    flat = [torch.zeros(1, 2, 6, 6)]
    assert masked_mse(flat, targets, mask, 20.0) / masked_mse(flat, targets, mask) > 10


def test_cosine_schedule_ends_at_the_time_limit_when_it_comes_before_the_last_epoch(monkeypatch):
    module = PoseModule("leap", {"filters": 2}, 1, 1, (16, 16), _config(max_minutes=10.0))
    clock = [1000.0]
    monkeypatch.setattr("posecore.train.module.time.monotonic", lambda: clock[0])
    assert module._cosine_factor(0) == 1.0  # the scheduler's first call, before training starts
    clock[0] += 120.0  # start-up does not count against the time limit
    module.on_train_start()
    assert module._cosine_factor(0) == 1.0
    clock[0] += 330.0  # 55% of the time limit at step 1 of 100: the clock, less its lag
    assert math.isclose(module._cosine_factor(1), 0.5, abs_tol=1e-9)
    clock[0] += 600.0  # past it
    assert math.isclose(module._cosine_factor(2), 0.0, abs_tol=1e-12)
    untimed = PoseModule("leap", {"filters": 2}, 1, 1, (16, 16), _config())
    assert untimed._cosine_factor(0) == 1.0 and untimed._cosine_factor(10**6) == 0.0


def test_a_run_that_keeps_its_time_limits_pace_follows_its_steps(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("posecore.train.module.time.monotonic", lambda: clock[0])
    module = PoseModule("leap", {"filters": 2}, 1, 1, (16, 16), _config(max_minutes=10.0))
    module.on_train_start()
    steps_only = PoseModule("leap", {"filters": 2}, 1, 1, (16, 16), _config())
    # Each step a little slower than the 6 s that fit 100 steps in 10 minutes, up to the lag.
    for step in range(1, 50):
        clock[0] = step * 6.0 + 29.0
        assert module._cosine_factor(step) == steps_only._cosine_factor(step)
    clock[0] = 50 * 6.0 + 31.0  # more than 5% of the run behind: the clock
    assert module._progress(50) > steps_only._progress(50)


def test_keypoint_errors_are_in_image_pixels_over_labeled_points():
    maps, _ = confidence_maps(torch.tensor([[[10.0, 6.0], [20.0, 14.0]]]), (8, 8), 4, 2.0)
    labels = torch.tensor([[[13.0, 10.0], [float("nan"), 3.0]]])
    errors, labeled, scores = keypoint_errors(maps, labels, 4)
    assert labeled.tolist() == [[True, False]]
    assert math.isclose(float(errors[0, 0]), 5.0, abs_tol=0.05)
    assert torch.allclose(scores, maps.amax(dim=(-2, -1)), atol=1e-4), "each map's value at its peak"


def test_keypoint_errors_decode_with_the_labels_priors_as_inference_does():
    # Keypoint 1's map is highest on keypoint 0 (a paw taken for the other), 0.7 on its label.
    labels = torch.tensor([[[10.0, 6.0], [22.0, 18.0]]])
    maps, _ = confidence_maps(labels, (8, 8), 4, 2.0)
    maps[0, 1] = torch.maximum(0.7 * maps[0, 1], maps[0, 0])
    errors, _, _ = keypoint_errors(maps, labels, 4)
    assert float(errors[0, 1]) > 10  # the global maximum: on the other paw
    ranges = ((0, 1, -14.0, -10.0, -14.0, -10.0),)  # keypoint 0 lies up-left of keypoint 1 in the labels
    errors, _, _ = keypoint_errors(maps, labels, 4, offset_ranges=ranges)
    assert float(errors.max()) < 0.1


@pytest.mark.filterwarnings(r"ignore:You are trying to `self.log\(\)`")
def test_module_prepares_raw_batches_steps_and_saves_its_hyperparameters():
    module = PoseModule(
        "stacked_densenet",
        {"growth_rate": 8, "n_transitions": 1, "n_graph_maps": 1},
        2,
        3,
        image_size=(30, 30),
        config=_config(),
        mean=(10.0,) * 3,
        std=(2.0,) * 3,
        skeleton=((0, 1),),
    )
    assert module.hparams.hyperparameters["n_graph_maps"] == 1 and module.hparams.mean == (10.0,) * 3
    keypoints = torch.tensor([[[10.0, 12.0], [float("nan")] * 2]] * 2)
    raw = {"image": torch.zeros(2, 30, 30, 3, dtype=torch.uint8), "keypoints": keypoints}
    batch = module.on_after_batch_transfer(raw, 0)
    assert batch["image"].shape == (2, 3, 32, 32) and torch.allclose(batch["image"][:, :, :30, :30], torch.tensor(-5.0))
    assert batch["maps"].shape == (2, 3, 8, 8) and batch["mask"].tolist() == [[True, False, False]] * 2
    loss = module.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert module.map_size == (8, 8) and [o.shape[1] for o in module(batch["image"])] == [3, 3]


def test_training_switches_from_crops_to_whole_frames_at_crop_until():
    module = PoseModule("leap", {"filters": 2}, 1, 1, (32, 32), _config(crop_size=16, crop_until=0.5))
    trainer = SimpleNamespace(training=True, global_step=0, estimated_stepping_batches=10, global_rank=0)
    module._trainer = trainer  # what the batch hook reads of a running fit
    raw = {"image": torch.zeros(2, 32, 32, 1, dtype=torch.uint8), "keypoints": torch.full((2, 1, 2), 12.0)}
    trainer.global_step = 4
    assert module.on_after_batch_transfer(dict(raw), 0)["image"].shape[-2:] == (16, 16)
    trainer.global_step = 5  # half of the run's 10 steps: whole frames from here on
    assert module.on_after_batch_transfer(dict(raw), 0)["image"].shape[-2:] == (32, 32)
    trainer.training = False  # validation always sees whole frames
    trainer.global_step = 0
    assert module.on_after_batch_transfer(dict(raw), 0)["image"].shape[-2:] == (32, 32)


def test_detection_errors_count_misses_and_false_peaks():
    import torch

    from posecore.train.module import MISS_SIGMAS, detection_errors
    from posecore.train.targets import confidence_maps

    truth = torch.tensor([[[[10.0, 10.0]], [[40.0, 30.0]]]])  # (B=1, I=2, K=1, 2)
    maps, _ = confidence_maps(
        torch.tensor([[[[11.0, 10.0]], [[90.0, 50.0]]]]), (32, 64), 2, 2.0
    )  # one found 1 px off, one far
    errors, counted = detection_errors(maps, truth, 2, 2.0)
    used = sorted(errors[counted].tolist())
    assert len(used) == 3  # the match, the missed animal, the false peak
    assert abs(used[0] - 1.0) < 0.01 and used[1:] == [MISS_SIGMAS * 2.0] * 2


def test_a_module_takes_a_decided_config_and_builds_its_augmentation_once():
    config = _config(flip=True, rotation_deg=10.0, noise_std=0.05)
    module = PoseModule("leap", {"filters": 2}, 2, 1, (16, 16), config, swap_pairs=((0, 1),))
    assert module.augmentation == config.augmentation(((0, 1),)) and module.augmentation.swap_pairs == ((0, 1),)
    assert module.hparams.config == asdict(config), "saved as plain values"
    with pytest.raises(ValueError, match=r"train\.flip, crop_size and crop_until must be decided first"):
        PoseModule("leap", {"filters": 2}, 1, 1, (16, 16), TrainConfig())


def test_a_checkpoint_written_before_the_config_was_handed_whole_still_loads_and_predicts_the_same():
    # best.ckpt: 1 epoch of leap (filters 2) on 16 disc frames, written by posecore before the
    # training settings reached PoseModule as one TrainConfig; expected_maps.pt: what it output then.
    module = load_checkpoint(DATA / "checkpoint-v1" / "best.ckpt")
    assert module.config == _config(
        max_epochs=1,
        max_minutes=5.0,
        sigma_px=3.0,
        seed=3,
        peak_weight=5.0,
        crop_background=0.25,
        flip=True,
        rotation_deg=10.0,
        translation_px=4.0,
        scale=0.1,
        brightness=0.1,
        contrast=0.2,
        noise_std=0.05,
    )
    assert module.augmentation.flip and module.augmentation.rotation_deg == 10.0 and not module.training
    images = torch.linspace(-2, 2, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    with torch.no_grad():
        maps = module(images)[-1]
    assert torch.equal(maps, torch.load(DATA / "checkpoint-v1" / "expected_maps.pt"))
