"""Measuring a benchmark's machine: peak memory, timed calls, the processor.

Standard library only: the peer benchmarks import it from the peers' environment,
which has no tridft (put this folder on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path
from typing import Callable


def peak_rss_mb() -> float:
    """This process's peak resident set so far, MiB.

    VmHWM where Linux provides it: ru_maxrss of a freshly started subprocess also counts
    its parent's resident set at the fork, which would hide small sizes.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def time_calls(function: Callable[[], object], repeats: int, warmup: int = 0,
               max_seconds: float | None = None) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds of this process) of each timed call of ``function``.

    ``warmup`` untimed calls first; then ``repeats`` timed calls, or with ``max_seconds``
    at least ``repeats`` and more until a third of ``max_seconds`` has passed, stopping
    once ``max_seconds`` has. The CPU time (all threads of the process) is disturbed
    much less than the wall time by other work on a shared machine.
    """
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    started = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - started

    while len(wall) < repeats or (max_seconds is not None and elapsed() < max_seconds / 3):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
        if max_seconds is not None and elapsed() > max_seconds:
            break
    return wall, cpu


def cpu_model() -> str:
    """The processor's name (/proc/cpuinfo), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Processor, logical CPUs, platform and Python version."""
    return {"cpu_count": os.cpu_count(), "processor": cpu_model(),
            "platform": platform.platform(), "python": platform.python_version()}


def source_sha256(root: Path) -> str:
    """The first 16 hex digits of the SHA-256 of every tridft module under ``root``
    (``root``/src/tridft/**/*.py, in sorted order): which code a benchmark ran."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((Path(root) / "src" / "tridft").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
