import copy
from pathlib import Path

import pytest
import yaml

from posecore.errors import InputError
from posecore.schema import check_config, key_path, load_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


RIG = "arena"
"""The name the tests give a rig: threed.rigs maps names of the user's choosing to rig sections."""


def sections(schema: dict, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every section of the config (an object with named keys), by its key path, a mapping of
    sections by name (threed.rigs) entering one named RIG; model.hyperparameters, a free mapping
    of the architecture's arguments that the model registry checks, has none."""
    found = []
    for name, sub in schema["properties"].items():
        if sub.get("type") == "object" and "properties" in sub:
            found += [(*path, name), *sections(sub, (*path, name))]
        elif isinstance(named := sub.get("additionalProperties"), dict) and "properties" in named:
            found += [(*path, name, RIG), *sections(named, (*path, name, RIG))]
    return found


SECTIONS = sections(SCHEMA)


def config_with_a_rig() -> dict:
    """The bundled config with one valid rig, so that a rig's sections can be broken one at a time."""
    config = copy.deepcopy(CONFIG)
    config["threed"]["rigs"][RIG] = {
        "board": {"type": "charuco", "squares_x": 8, "squares_y": 11, "square_mm": 24.0, "marker_mm": 18.75},
        "cameras": {"back": "data/calibration/back/*.jpg", "top": "data/calibration/top/*.jpg"},
    }
    return config


def schema_at(path: tuple[str, ...]) -> dict:
    schema = SCHEMA
    for name in path:
        schema = schema["properties"][name] if name != RIG else schema["additionalProperties"]
    return schema


def refusal(config: dict) -> str:
    with pytest.raises(InputError) as error:
        check_config(config, SCHEMA, "config/config.yaml")
    return str(error.value)


def test_the_bundled_config_passes_and_every_section_is_checked():
    check_config(copy.deepcopy(CONFIG), SCHEMA, "config/config.yaml")
    check_config(config_with_a_rig(), SCHEMA, "config/config.yaml")
    assert {".".join(s) for s in SECTIONS} == {
        "dataset", "dataset.split", "extract_frames", "outliers", "labeled_videos", "model", "train",
        "animals", "tracking", "inference", "learning_curve", "qc", "threed", "threed.rigs.arena",
        "threed.rigs.arena.board",
        "threed.rigs.arena.calibration", "threed.triangulation", "threed.triangulation.refinement",
    }  # fmt: skip


@pytest.mark.parametrize("section", SECTIONS, ids=".".join)
def test_a_typo_in_a_section_is_one_line_naming_its_path_and_the_closest_key(section):
    config = node = config_with_a_rig()
    for name in section:
        node = node.setdefault(name, {})
    meant = max(schema_at(section)["properties"], key=len)  # its longest key, with two letters swapped
    typo = meant[0] + meant[2] + meant[1] + meant[3:]
    node[typo] = 1
    message = refusal(config)
    where = ".".join(section)
    assert message.startswith(f"config/config.yaml: unknown key {where}.{typo}; the closest is {where}.{meant} (")
    assert "\n" not in message


def test_the_issues_typo_names_the_key_and_lists_what_inference_takes():
    config = copy.deepcopy(CONFIG)
    config["inference"]["shard_sise"] = 500
    message = refusal(config)
    assert message == (
        "config/config.yaml: unknown key inference.shard_sise; the closest is inference.batch_size "
        "(inference takes: batch_size, compile, decoders, device, frames_per_job, frames_per_shard, precision, priors, "
        "threads, videos_per_job)"
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(unknwon_key=1), "unknown key unknwon_key; the closest is "),
        (lambda c: c["inference"].update(frames_per_shard="big"), "inference.frames_per_shard: 'big' is not of type"),
        (lambda c: c["model"].update(architecture="resnet9000"), "model.architecture: 'resnet9000' is not one of"),
        (lambda c: c["dataset"].pop("labels"), "dataset.labels is required but missing"),
        (lambda c: c["dataset"]["labels"].append(7), "dataset.labels[1]: 7 is not of type 'string'"),
        (lambda c: c["train"].update(batch_size=0), "train.batch_size: 0 is less than the minimum of 1"),
        # "auto" or an integer: the message is about the alternative whose type the value has
        (lambda c: c["train"].update(max_epochs=0), "train.max_epochs: 0 is less than the minimum of 1"),
        (lambda c: c["train"].update(max_epochs="often"), "train.max_epochs: 'often' is not one of ['auto']"),
        (lambda c: c["train"].update(max_epochs=2.5), "train.max_epochs: 2.5 is not of type 'integer'; 2.5 is not"),
    ],
)
def test_each_broken_value_is_named_by_its_path(edit, expected):
    config = copy.deepcopy(CONFIG)
    edit(config)
    message = refusal(config)
    assert message.startswith(f"config/config.yaml: {expected}") and "\n" not in message


def test_every_error_gets_its_own_line():
    config = copy.deepcopy(CONFIG)
    config["qc"]["n_wrost"] = 1
    config["train"]["max_epochs"] = -1
    lines = refusal(config).splitlines()
    assert lines[0] == "config/config.yaml: 2 errors" and len(lines) == 3
    assert lines[1].startswith("unknown key qc.n_wrost; the closest is qc.n_worst")
    assert lines[2] == "train.max_epochs: -1 is less than the minimum of 1"


def test_defaults_are_filled_in_as_snakemakes_validate_fills_them():
    from snakemake.utils import validate

    minimal = {"dataset": {"labels": ["a.csv"], "keypoints": ["nose"]}, "train": {"max_epochs": 3}}
    ours = check_config(copy.deepcopy(minimal), SCHEMA, "config.yaml")
    theirs = copy.deepcopy(minimal)
    validate(theirs, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    assert ours == theirs
    assert ours["inference"]["frames_per_shard"] == 9000 and ours["dataset"]["split"]["seed"] == 0
    assert ours["train"]["max_epochs"] == 3 and ours["videos"] == "config/videos.tsv"


def test_key_paths_put_list_items_in_brackets():
    assert key_path(["dataset", "labels", 0]) == "dataset.labels[0]"
    assert key_path([]) == ""
