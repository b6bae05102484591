"""Transparent huge pages for glibc's malloc: large tensors on the CPU without a page fault per 4 kB.

PyTorch's CPU tensors come from malloc, and glibc serves every large block with a fresh mmap
(by default) or from heap memory new to the process, which the kernel fills on first touch,
4 kB page by 4 kB page. A model's activations are such blocks, allocated anew at every layer
of every batch: at 640x480 most of a Stacked DenseNet's forward pass on the CPU went to page
faults (an elementwise op on 80 MB took 65 ms, 12 ms into a reused buffer; the whole forward
0.45 s a frame against 0.25 s with huge pages on one thread, end-to-end inference 3.2 against
4.8 frames/s on two; benchmarks/RESULTS.md). glibc 2.35 and later
can ask the kernel for 2 MB pages for those blocks (`madvise(MADV_HUGEPAGE)`) when the
environment variable GLIBC_TUNABLES holds `glibc.malloc.hugetlb=1`; it is read once, as a
process starts. Inference goes further and keeps freed memory for the next batch
(`posecore.infer.reuse_large_buffers`), so that after the first batch nothing is faulted in
at all; huge pages still make that first batch, training and everything else faster.

Elsewhere the setting does nothing: older glibc and other C libraries ignore the variable,
and kernels with transparent huge pages set to "never" ignore the advice. POSECORE_HUGE_PAGES=0
in the environment leaves the variable alone (to measure without it).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping, Sequence

TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "POSECORE_HUGE_PAGES"
TRIM_THRESHOLD = (1 << 31) - 1  # bytes: free memory at the top of the heap that glibc keeps (its largest)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` whose GLIBC_TUNABLES asks malloc for huge pages.

    Other tunables are kept; an explicit `glibc.malloc.hugetlb` setting, or POSECORE_HUGE_PAGES=0,
    leaves the environment as it is.
    """
    environment = dict(environ)
    tunables = environment.get("GLIBC_TUNABLES", "")
    if environment.get(OPT_OUT) == "0" or f"{TUNABLE}=" in tunables:
        return environment
    environment["GLIBC_TUNABLES"] = f"{tunables}:{TUNABLE}=1" if tunables else f"{TUNABLE}=1"
    return environment


def restart_with_huge_pages(argv: Sequence[str]) -> None:
    """Replace this process with `python *argv` under `with_huge_pages`, unless it already runs so.

    Call it first thing, before any work, with the arguments that start the same program again
    (e.g. ["-m", "posecore", *sys.argv[1:]]). Returns only where nothing needs changing: not
    Linux, the setting already there, or opted out.
    """
    environment = with_huge_pages(os.environ)
    if sys.platform != "linux" or environment == dict(os.environ):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], environment)


def reuse_large_buffers() -> bool:
    """Have glibc's malloc serve every block from its heap and keep freed memory for the next batch.

    By default glibc gives each block of more than its mmap threshold (128 kB to 32 MB) a fresh
    mmap, returned to the system when freed. A model's activations are such blocks, allocated
    anew at every layer of every batch, so the kernel faulted in and zeroed every one of them
    again: with DeepPoseKit's Stacked DenseNet at 640x480 on the CPU that cost a third of the
    forward pass even with huge pages (5.5 against 8.6 frames/s,
    benchmarks/RESULTS.md). With mmap off (M_MMAP_MAX 0) and the heap never trimmed below
    `TRIM_THRESHOLD`, a batch reuses the memory the previous one freed. Training steps do the
    same (`posecore.train.train_model` calls this too: 10 epochs on openfield's crops in 77
    instead of 92 s).

    The process then holds its peak heap until it exits, and that stays flat over any length of
    video only if nothing long-lived is allocated between the activations. glibc gives each
    thread its own heap (arena), so inference jobs build and hold the trajectory
    tables in a writer thread: when the model's thread held them until their row group was
    written, the heap grew 8 MB a frame.

    Returns:
        True where the C library is glibc and took the settings; False elsewhere (nothing changed).
    """
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on: no search for its file
    except (OSError, TypeError):  # Windows has no such handle
        return False
    if not hasattr(libc, "mallopt"):  # musl, macOS: other allocators, left as they are
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
