import os
import subprocess
import sys

import pytest

from posecore.hugepages import with_huge_pages


def test_huge_pages_are_added_to_the_tunables_already_there():
    assert with_huge_pages({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    both = with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "HOME": "/x"})
    assert both == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "HOME": "/x"}


@pytest.mark.parametrize(
    "environment",
    [{"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, {"POSECORE_HUGE_PAGES": "0"}],
    ids=["the user's own setting", "opted out"],
)
def test_an_explicit_setting_is_left_alone(environment):
    assert with_huge_pages(environment) == environment


@pytest.mark.skipif(sys.platform != "linux", reason="the restart happens on Linux only")
def test_a_process_restarts_once_with_huge_pages_and_the_command_line_does_so(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "POSECORE_HUGE_PAGES")}
    script = (
        "import os, sys; from posecore.hugepages import restart_with_huge_pages; print('start', flush=True); "
        "restart_with_huge_pages(sys.argv); print(os.environ['GLIBC_TUNABLES'])"
    )
    (tmp_path / "restart.py").write_text(script)
    command = [sys.executable, str(tmp_path / "restart.py")]
    run = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
    assert run.stdout.splitlines() == ["start", "start", "glibc.malloc.hugetlb=1"]
    (tmp_path / "restart.py").write_text(script.replace("os.environ['GLIBC_TUNABLES']", "'done'"))
    opted_out = subprocess.run(
        command,
        capture_output=True, text=True, env={**environment, "POSECORE_HUGE_PAGES": "0"}, check=True,
    )  # fmt: skip
    assert opted_out.stdout.splitlines() == ["start", "done"]
    command = [sys.executable, "-m", "posecore", "--version"]
    assert subprocess.run(command, capture_output=True, text=True, env=environment, check=True).stdout.startswith(
        "posecore "
    )
