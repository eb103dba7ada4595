"""What every results file records about its run: the code, the machine, the versions."""

from __future__ import annotations

import subprocess

import ase
import numpy as np
import torch

import tridft
from measure import machine, source_sha256
from paths import ROOT


def environment() -> dict:
    """The machine and the versions, for every results file."""
    import importlib.metadata as metadata

    versions = {"tridft": tridft.__version__, "torch": torch.__version__,
                "numpy": np.__version__, "ase": ase.__version__}
    for name in ("vesin", "pydantic"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"code": code_state(),
            "machine": {**machine(), "note": "2 cores shared with other processes; CPU only"},
            "versions": versions}


def code_state() -> dict:
    """The commit the benchmark ran on, and whether the training code differed from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_source_changes": bool(git("status", "--porcelain", "--", "src")),
            "source_sha256": source_sha256(ROOT)}
