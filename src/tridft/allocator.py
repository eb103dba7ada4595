"""Keep freed tensor memory inside the process instead of handing it back to the system.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves blocks larger
than its mmap threshold (128 KiB at first) with fresh pages from the kernel and returns
them on ``free``; every new tensor of that size then pays one page fault per 4 KiB page
on first touch. A training step allocates and frees the same few hundred edge-sized
tensors again and again, so it pays those faults every step. On virtual machines a
page fault costs microseconds: measured on a 2-core VM (``benchmarks/allocator.py``,
``docs/results/allocator.json``), a training step of 16 ethanol structures took 124 ms
with about 4,000 page faults, and 108 ms with about 100 once freed memory was kept;
2 water cells of 192 atoms 1.37 s against 1.13 s; one -dE/dR evaluation of a water
cell 249 ms against 207 ms.

``keep_freed_memory()`` raises glibc's mmap and trim thresholds (``mallopt``), so freed
blocks stay in the process's heap and the next step reuses them: the process keeps its
peak memory instead of shrinking between steps, the trade every caching allocator
(PyTorch's on the GPU, jemalloc, tcmalloc) makes. It changes nothing on other C
libraries or operating systems, and ``TRIDFT_KEEP_FREED_MEMORY=0`` turns it off.
``tridft`` commands, training and the ASE calculator call it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

LOG = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

# Blocks up to 1 GiB come from the heap (glibc refuses thresholds it cannot honour: then
# its own ceiling, 32 MiB on 64-bit systems, is used); the heap is grown 64 MiB at a time
# and never trimmed below what the process has used.
MMAP_THRESHOLDS = (1 << 30, 32 << 20)
TOP_PAD = 64 << 20
TRIM_THRESHOLD = (1 << 31) - 1

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process; True when glibc accepted them."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("TRIDFT_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in MMAP_THRESHOLDS):
        return False
    _applied = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(M_TOP_PAD, TOP_PAD) == 1
    LOG.debug("glibc malloc keeps freed memory: %s", _applied)
    return _applied
