"""The periodic water boxes of the speed benchmarks: one 192-atom cell, replicated.

ASE and NumPy only: the peer benchmarks import it from the peers' environment,
which has no tridft (put this folder on ``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

import ase
import ase.io
import numpy as np

from paths import ROOT
WATER_FILE = "deepmd_water_192_energy_forces.extxyz"

# 192 water atoms replicated to 12,288 (the 1,536-atom box is 2x2x2).
WATER_REPEATS = {192: (1, 1, 1), 384: (2, 1, 1), 768: (2, 2, 1), 1536: (2, 2, 2),
                 3072: (4, 2, 2), 6144: (4, 4, 2), 12288: (4, 4, 4)}


def water_path() -> Path:
    """The 400 DeePMD water cells (64 H2O, energies and forces): $TRIDFT_WATER, else
    shared/data/ beside the repository (where the reference data live) or inside it."""
    if os.environ.get("TRIDFT_WATER"):
        return Path(os.environ["TRIDFT_WATER"])
    for folder in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data"):
        if (folder / WATER_FILE).is_file():
            return folder / WATER_FILE
    return ROOT.parent / "shared" / "data" / WATER_FILE


def first_cell(path: str | Path) -> ase.Atoms:
    """The first frame of ``path`` without its labels (reading all 400 would inflate a
    memory baseline)."""
    atoms = ase.io.read(str(path), index=0)
    return ase.Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell,
                     pbc=atoms.pbc)


def water_box(path: str | Path, repeat: tuple[int, int, int]) -> ase.Atoms:
    """The first periodic 192-atom water cell of ``path``, replicated ``repeat`` times
    (ASE's order: the original atoms first, then each image)."""
    return first_cell(path).repeat(repeat)


def generated_water_cell(per_side: int = 4, spacing: float = 3.11, seed: int = 0) -> ase.Atoms:
    """per_side^3 randomly oriented H2O on a cubic grid at about liquid density."""
    rng = np.random.default_rng(seed)
    oxygen_hydrogens = np.array([[0.0, 0.0, 0.0], [0.757, 0.586, 0.0], [-0.757, 0.586, 0.0]])
    positions = []
    for index in np.ndindex(per_side, per_side, per_side):
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.append(oxygen_hydrogens @ rotation.T + (np.array(index) + 0.5) * spacing)
    n = per_side**3
    return ase.Atoms(numbers=np.tile([8, 1, 1], n), positions=np.concatenate(positions),
                     cell=np.eye(3) * per_side * spacing, pbc=True)
