"""Small molecules and reference data for the labelling tests."""

from __future__ import annotations

from pathlib import Path

import ase
import numpy as np
import pytest

from tridft.label.pyscf_backend import LabelSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "data" / "ethanol_pbe_def2svp_800.extxyz"

# Water, Angstrom (near the PBE minimum).
WATER = (np.array([8, 1, 1]),
         np.array([[0.0, 0.0, 0.117], [0.0, 0.757, -0.467], [0.0, -0.757, -0.467]]))
# The smallest setup that still exercises every property: a minimal basis.
FAST = LabelSettings(basis="sto-3g")


def reference_path() -> Path:
    """The relabelled rMD17 ethanol file; skips the test when it is not on this machine."""
    if not REFERENCE.is_file():
        pytest.skip(f"reference data {REFERENCE} not available")
    return REFERENCE


def distorted_waters(n: int, seed: int = 0) -> list[ase.Atoms]:
    """``n`` slightly different water molecules."""
    rng = np.random.default_rng(seed)
    numbers, positions = WATER
    return [ase.Atoms(numbers=numbers, positions=positions + rng.normal(0, 0.03, (3, 3)))
            for _ in range(n)]
