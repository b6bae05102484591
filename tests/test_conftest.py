"""The suite's own rule: under CI=true a skip that is not on the allow-list fails the run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import NO_GPU, allowed_skip

TESTS = """
import pytest

def test_runs():
    pass

def test_needs_data():
    pytest.skip("../shared/data is not available")

@pytest.mark.gpu
def test_on_a_gpu():
    pass

@pytest.mark.skipif(True, reason="movement needs Python 3.11 or newer")
def test_movement():
    pass
"""


def run_session(folder, ci: str, *args: str) -> subprocess.CompletedProcess:
    """pytest over `folder`, holding a copy of the suite's conftest and `TESTS`, with CI set to `ci`."""
    shutil.copy(Path(__file__).with_name("conftest.py"), folder / "conftest.py")
    (folder / "test_some.py").write_text(TESTS)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    command += ["-o", "markers=gpu: needs a CUDA device", str(folder)]
    return subprocess.run(
        command, cwd=folder, env={**os.environ, "CI": ci}, capture_output=True, text=True, timeout=120
    )


def test_a_skip_off_the_allow_list_fails_a_ci_run_naming_what_is_missing(tmp_path):
    run = run_session(tmp_path, "true")
    assert run.returncode == 1, run.stdout
    assert "CI=true: 1 tests skipped that must run" in run.stdout
    assert "test_some.py::test_needs_data: ../shared/data is not available" in run.stdout
    refused = run.stdout.split("CI=true:")[1]
    assert "test_movement" not in refused and "test_on_a_gpu" not in refused


def test_outside_ci_the_run_passes_and_ends_with_the_skips_by_reason(tmp_path):
    run = run_session(tmp_path, "")
    assert run.returncode == 0, run.stdout
    listing = run.stdout.split("skipped, by reason")[1]
    assert "   1  ../shared/data is not available\n" in listing
    assert "   1  movement needs Python 3.11 or newer  [allowed in CI: movement itself needs" in listing
    assert "CI=true:" not in run.stdout


def test_the_allow_list_takes_gpu_tests_without_a_gpu_and_named_reasons_only():
    assert allowed_skip({"gpu", "slow"}, NO_GPU) is not None
    assert allowed_skip(set(), NO_GPU) is None, "only a test marked gpu may skip for want of a GPU"
    assert allowed_skip({"gpu"}, "triton is not installed") is None, "a GPU test skipping on a GPU machine"
    assert allowed_skip(set(), "movement needs Python 3.11 or newer") is not None
    assert allowed_skip({"slow"}, "../shared/data is not available") is None
    assert allowed_skip(set(), "no Chromium to test the report in: apt-get failed") is None
    assert allowed_skip(set(), "a SLURM cluster needs root, or munge/slurmctld/slurmd installed and running") is None
