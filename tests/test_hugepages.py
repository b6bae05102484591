import os
import platform
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
def test_a_process_restarts_once_with_huge_pages(tmp_path):
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


# Imported first by every Python process started with its folder on PYTHONPATH: says how it was started.
SITECUSTOMIZE = """
import os, sys
print("python", os.environ.get("GLIBC_TUNABLES", "-"), *sys.argv, file=sys.stderr, flush=True)
"""
CONSOLE_SCRIPT = "import sys; from posecore.cli import main; sys.exit(main())"  # what pip's `posecore` runs


@pytest.mark.skipif(sys.platform != "linux", reason="the restart happens on Linux only")
@pytest.mark.parametrize(
    ("environment", "starts"),
    [
        ({}, [["-", "-c", "synth", "--frames", "x"], ["glibc.malloc.hugetlb=1", "-m", "synth", "--frames", "x"]]),
        ({"POSECORE_HUGE_PAGES": "0"}, [["-", "-c", "synth", "--frames", "x"]]),
        ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, [["glibc.malloc.hugetlb=0", "-c", "synth", "--frames", "x"]]),
    ],
    ids=["restarts once", "opted out", "the user's own setting"],
)
def test_the_posecore_command_restarts_itself_once_with_huge_pages(tmp_path, environment, starts):
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    inherited = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "POSECORE_HUGE_PAGES")}
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**inherited, **environment, "PYTHONPATH": path}
    run = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, "synth", "--frames", "x"], capture_output=True, text=True, env=env
    )
    lines = run.stderr.splitlines()
    assert [line.split()[1:] for line in lines if line.startswith("python ")] == starts
    # The restarted process parses the same arguments: argparse's error, and its exit status, come back.
    assert run.returncode == 2 and "argument --frames: invalid int value: 'x'" in run.stderr


HEAP_CHECK = """
import ctypes, sys
from posecore.hugepages import reuse_large_buffers
if sys.argv[1] == "reuse":
    assert reuse_large_buffers()
libc = ctypes.CDLL(None)
libc.malloc.restype = libc.sbrk.restype = ctypes.c_void_p
libc.malloc.argtypes, libc.free.argtypes, libc.sbrk.argtypes = [ctypes.c_size_t], [ctypes.c_void_p], [ctypes.c_ssize_t]
block = libc.malloc(64 << 20)
print("heap" if block < libc.sbrk(0) else "mmap")
libc.free(block)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
@pytest.mark.parametrize(("mode", "where"), [("default", "mmap"), ("reuse", "heap")])
def test_large_blocks_come_from_the_heap_once_buffers_are_reused(mode, where):
    """A 64 MB block is a fresh mmap by default and heap memory (kept when freed) after `reuse_large_buffers`."""
    done = subprocess.run([sys.executable, "-c", HEAP_CHECK, mode], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [where]
