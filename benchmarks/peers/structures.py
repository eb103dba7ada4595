"""Structures and labels for the peer benchmark, read with ASE only (no tridft import).

The peer environment does not have tridft installed, so this module reads the
same extxyz files the tridft side reads and applies the split that the tridft
side wrote to JSON (indices into the file), so every code sees the same frames.

Labels, in the units of the files (eV, eV/Angstrom, Angstrom^3):

    energy          float          eV
    forces          (n, 3)         eV/Angstrom
    polarizability  (3, 3) | None  Angstrom^3
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np


@dataclass
class Structure:
    atoms: ase.Atoms
    energy: float | None
    forces: np.ndarray | None
    polarizability: np.ndarray | None


def read_labelled(path: str | Path) -> list[Structure]:
    structures = []
    for atoms in ase.io.read(str(path), index=":"):
        calc = atoms.calc
        energy = calc.results.get("energy") if calc is not None else None
        forces = calc.results.get("forces") if calc is not None else None
        alpha = atoms.info.get("polarizability")
        if alpha is not None:
            alpha = np.asarray(alpha, dtype=float).reshape(3, 3)
        bare = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions,
                         cell=atoms.cell, pbc=atoms.pbc)
        structures.append(Structure(bare, None if energy is None else float(energy),
                                    None if forces is None else np.array(forces, dtype=float),
                                    alpha))
    return structures


def load_split(path: str | Path) -> dict[str, list[int]]:
    """{'train': [...], 'validation': [...], 'test': [...]} indices into the data file."""
    data = json.loads(Path(path).read_text())
    return {name: [int(i) for i in data[name]] for name in ("train", "validation", "test")}
