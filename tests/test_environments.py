"""The three lists of dependencies agree: pyproject.toml (pip), environment.yml (conda, the
driver's environment) and workflow/envs/posecore.yaml (each rule's environment under
`--sw-deployment-method conda`, which must not install posecore itself: jobs import it from
the checkout, so that a change to the code reaches them)."""

import re
from pathlib import Path

import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"tables": "pytables", "duckdb": "python-duckdb"}  # conda-forge's names
DEVELOPMENT = {"pytest", "ruff", "snakefmt", "python-duckdb", "pycocotools"}  # make test only


def names(requirements: list) -> set[str]:
    """Package names of pip or conda requirement strings (a conda file's pip: list flattened)."""
    found = set()
    for requirement in requirements:
        if isinstance(requirement, dict):
            found |= names(requirement["pip"])
        elif not requirement.startswith("-"):
            name = re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0].lower()
            found.add(CONDA_NAMES.get(name, name))
    return found


def conda_names(path: Path) -> set[str]:
    return names(yaml.safe_load(path.read_text())["dependencies"]) - {"python", "pip", "ffmpeg"}


def pip_names() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return names(project["dependencies"]) - {"tomli"}, names(extras["test"]) | names(extras["movement"])


def test_environment_yml_holds_every_dependency_of_pyproject():
    runtime, extra = pip_names()
    assert conda_names(ROOT / "environment.yml") == runtime | extra


def test_each_rules_environment_holds_the_runtime_dependencies_and_not_posecore():
    runtime, _ = pip_names()
    path = ROOT / "workflow" / "envs" / "posecore.yaml"
    assert conda_names(path) == (runtime | {"movement"}) - DEVELOPMENT
    pip = next(d["pip"] for d in yaml.safe_load(path.read_text())["dependencies"] if isinstance(d, dict))
    assert not [line for line in pip if line.startswith("-e") or "/" in line or line.startswith(".")]


def test_torch_is_pinned_alike_in_the_makefile_and_both_conda_files():
    pin = re.search(r"^TORCH \?= (torch==\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    for path in (ROOT / "environment.yml", ROOT / "workflow" / "envs" / "posecore.yaml"):
        assert pin in path.read_text(), path
