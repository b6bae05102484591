"""A single-node SLURM cluster on this machine, for testing the workflow's SLURM profile.

It runs Debian's munge, slurmctld and slurmd with no accounting database, two partitions
(`cpu`, the default, and `gpu`, on the same node and without GPUs, so that the profile's
partition mapping is exercised) and memory as a consumable, enforced resource. Everything
it writes lives under one state folder; `/etc/slurm/slurm.conf` is written too, because a
job's `srun` reads only that path. A config that this module did not write is never
touched: starting refuses instead.

From a shell (as root)::

    python tests/slurm/cluster.py start     # installs the packages when missing
    python tests/slurm/cluster.py status
    python tests/slurm/cluster.py stop
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
STATE = Path("/var/tmp/posecore-slurm")
MARKER = "# Written by posecore's tests/slurm/cluster.py"
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
# Finished jobs stay visible to `squeue` this long: the SLURM executor plugin uses squeue
# for job status only when MinJobAge is at least 3x its first status-check delay.
MIN_JOB_AGE_S = 600


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster (not root, no packages, a foreign SLURM)."""


@dataclass(frozen=True)
class Node:
    """The one compute node: its name, CPUs and memory (MB) as `slurmd -C` reports them."""

    name: str
    cpus: int
    memory_mb: int


def _run(*command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=timeout)


def missing_packages() -> list[str]:
    """The Debian packages of the cluster that are not installed."""
    executables = {"munge": "munged", "slurmctld": "slurmctld", "slurmd": "slurmd", "slurm-client": "sbatch"}
    return [package for package in PACKAGES if shutil.which(executables[package], path=_sbin_path()) is None]


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def install_packages() -> None:
    """Install munge, slurmctld, slurmd and the SLURM client with apt-get (root only).

    Raises:
        ClusterUnavailable: when a package is missing and cannot be installed here.
    """
    missing = missing_packages()
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterUnavailable(f"SLURM packages missing ({', '.join(missing)}) and no root apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if result.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def probe_node() -> Node:
    """This machine as a SLURM node, from `slurmd -C`, keeping 1 GB of memory for the system."""
    fields = dict(item.split("=", 1) for item in _run(_sbin("slurmd"), "-C").stdout.split() if "=" in item)
    return Node(name=socket.gethostname(), cpus=int(fields["CPUs"]), memory_mb=int(fields["RealMemory"]) - 1024)


def _sbin(name: str) -> str:
    found = shutil.which(name, path=_sbin_path())
    if found is None:
        raise ClusterUnavailable(f"{name} is not installed")
    return found


def slurm_conf(node: Node, state: Path = STATE) -> str:
    """The text of slurm.conf for a single-node cluster of `node`, its files under `state`."""
    return f"""{MARKER}: a single-node test cluster.
ClusterName=posecore-test
SlurmctldHost={node.name}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/slurmctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
# No cgroups here: processes are tracked through /proc and tasks are not bound to CPUs.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are consumable; a job using more memory than it asked for is killed.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# No accounting database: job status comes from squeue, which keeps finished jobs this long.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge={MIN_JOB_AGE_S}
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# A job asking for more than a partition or its node has is refused at submission.
EnforcePartLimits=ALL
SchedulerParameters=sched_interval=2
KillWait=5
NodeName={node.name} NodeAddr=127.0.0.1 CPUs={node.cpus} RealMemory={node.memory_mb} State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
"""


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def is_running() -> bool:
    """Whether this module's cluster answers: our slurm.conf and the node idle or busy."""
    if not SLURM_CONF.exists() or not SLURM_CONF.read_text().startswith(MARKER):
        return False
    if shutil.which("sinfo") is None:
        return False
    result = _run("sinfo", "--noheader", "--format=%t", check=False, timeout=20)
    states = set(result.stdout.split())
    return result.returncode == 0 and bool(states) and states <= {"idle", "mix", "alloc"}


def start(timeout: float = 60) -> Node:
    """Install what is missing, write the config, start munged, slurmctld and slurmd.

    Returns once `sinfo` shows the node idle; a cluster of this module that already runs
    is reused.

    Raises:
        ClusterUnavailable: when not root, when the packages cannot be installed, or when
            `/etc/slurm/slurm.conf` belongs to a real cluster.
        TimeoutError: when the node is not idle within `timeout` seconds (the daemons' logs
            are in the message).
    """
    if os.geteuid() != 0:
        raise ClusterUnavailable("starting a SLURM cluster needs root (munged, slurmctld and slurmd)")
    if SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(MARKER):
        raise ClusterUnavailable(f"{SLURM_CONF} exists and was not written by posecore's test harness")
    install_packages()
    if is_running():
        return probe_node()
    stop()
    node = probe_node()
    for folder in (STATE / "slurmctld", STATE / "slurmd"):
        folder.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SLURM_CONF.write_text(slurm_conf(node))
    _start_munge()
    # -i: ignore state left by an earlier cluster (jobs, node states).
    _run(_sbin("slurmctld"), "-i")
    _run(_sbin("slurmd"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running():
            return node
        time.sleep(0.5)
    raise TimeoutError(f"the SLURM node did not become idle in {timeout:.0f} s:\n{_logs()}")


def _start_munge() -> None:
    socket_dir = Path("/run/munge")
    if _pid_alive(socket_dir / "munged.pid"):
        return
    socket_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(socket_dir, "munge", "munge")
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        _run(_sbin("mungekey"), "--create")
        shutil.chown(key, "munge", "munge")
    _run("runuser", "-u", "munge", "--", _sbin("munged"))
    _run("munge", "-n")  # fails here, not in slurmctld, when munged does not answer


def _logs() -> str:
    return "\n".join(
        f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-20:])
        for log in (STATE / "slurmctld.log", STATE / "slurmd.log")
        if log.exists()
    )


def stop() -> None:
    """Cancel every job, stop slurmd and slurmctld, and leave munged running (it is cheap).

    Only daemons whose pid files this module's config names are signalled.
    """
    if shutil.which("scancel") and is_running():
        _run("scancel", "--full", "--user", "root", check=False, timeout=20)
    for name in ("slurmd", "slurmctld"):
        pid = _pid_alive(STATE / f"{name}.pid")
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _pid_alive(STATE / f"{name}.pid") and time.monotonic() < deadline:
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Command line: `start`, `stop` or `status` of the test cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            node = start()
            print(f"SLURM cluster up: node {node.name}, {node.cpus} CPUs, {node.memory_mb} MB; partitions cpu, gpu")
        elif args.action == "stop":
            stop()
            print("SLURM cluster stopped")
        else:
            print("running" if is_running() else "not running")
            return 0 if is_running() else 1
    except ClusterUnavailable as error:
        print(f"cannot run the test cluster: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
