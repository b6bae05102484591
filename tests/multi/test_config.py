import pytest

from posecore.errors import InputError
from posecore.multi.config import is_multi_animal, topdown_config, tracker_config


def test_the_workflow_sections_make_the_configs() -> None:
    animals = {"max_animals": 3, "count": "maximum", "unique_keypoints": ["feeder"], "centroid_scale": 0.25,
               "crop_size": 0, "anchor": "neck"}  # fmt: skip
    assert is_multi_animal(animals) and not is_multi_animal({"max_animals": 1})
    topdown = topdown_config(animals, "config.yaml")
    assert (topdown.max_animals, topdown.centroid_scale, topdown.anchor) == (3, 0.25, "neck")
    tracker = tracker_config(animals, {"max_gap": 12}, "config.yaml")
    assert (tracker.n_animals, tracker.count, tracker.max_gap) == (3, "maximum", 12)


def test_bad_values_name_the_config_and_the_key() -> None:
    with pytest.raises(InputError, match=r"config\.yaml \(key animals\.crop\)"):
        topdown_config({"max_animals": 2, "crop": 3}, "config.yaml")
    with pytest.raises(InputError, match=r"config\.yaml \(key tracking\): tracking\.max_gap and window must be >= 1"):
        tracker_config({"max_animals": 2}, {"max_gap": 0}, "config.yaml")
