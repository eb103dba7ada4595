"""One atomic structure with its labels, in internal units, as numpy arrays.

A label that a structure does not carry is ``None``: a missing label is never a zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from ase.data import chemical_symbols

# Names of the labels tridft knows. Extra properties (for new heads) live in
# ``Record.extra`` under their own names.
ENERGY = "energy"
FORCES = "forces"
POLARIZABILITY = "polarizability"
DIPOLE = "dipole"
LABELS = (ENERGY, FORCES, POLARIZABILITY, DIPOLE)


@dataclass
class Record:
    """A structure and its labels.

    numbers:        (n,)   int     atomic numbers
    positions:      (n, 3) float   Angstrom
    cell:           (3, 3) float   Angstrom, rows are lattice vectors; ``None`` for a molecule
    pbc:            (3,)   bool    periodic directions (all False for a molecule)
    energy:         float          eV, total energy
    forces:         (n, 3) float   eV/Angstrom
    polarizability: (3, 3) float   Angstrom^3, symmetric
    dipole:         (3,)   float   e*Angstrom
    extra:          name -> array  further per-structure labels (any shape)
    atom_extra:     name -> array  further per-atom labels, leading dimension n
    source:         where the record came from ("file.xyz:12"), for messages
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    energy: float | None = None
    forces: np.ndarray | None = None
    polarizability: np.ndarray | None = None
    dipole: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    atom_extra: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return int(len(self.numbers))

    @property
    def is_periodic(self) -> bool:
        return bool(np.any(self.pbc))

    def has(self, label: str) -> bool:
        """Whether this record carries ``label`` (a known label or an extra one)."""
        return self.label(label) is not None

    def label(self, label: str):
        """The value of ``label`` or None."""
        if label in LABELS:
            return getattr(self, label)
        if label in self.extra:
            return self.extra[label]
        return self.atom_extra.get(label)


def unknown_elements(numbers: Sequence[int], known: Sequence[int]) -> list[int]:
    """The atomic numbers of ``numbers`` outside ``known`` (a model's training elements),
    sorted; none when ``known`` is empty (a model that does not list its elements)."""
    if known is None or len(known) == 0:
        return []
    return sorted({int(z) for z in numbers} - {int(z) for z in known})


def unknown_elements_message(unknown: Sequence[int], known: Sequence[int]) -> str:
    """``element N (Z=7) is unknown to the model, which was trained on H, C, O``."""
    names = ", ".join(f"{_symbol(z)} (Z={z})" for z in unknown)
    verb = "are" if len(unknown) > 1 else "is"
    return (f"element{'s' if len(unknown) > 1 else ''} {names} {verb} unknown to the model, "
            f"which was trained on {', '.join(_symbol(z) for z in known)}")


def _symbol(z: int) -> str:
    z = int(z)
    return chemical_symbols[z] if 0 < z < len(chemical_symbols) else "?"
