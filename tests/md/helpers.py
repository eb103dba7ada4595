"""Shared pieces of the MD tests: a small smooth model and ethanol as ase.Atoms."""

from __future__ import annotations

import ase

from tests.physics.helpers import _ethanol_frames, perturbed_model  # noqa: F401


def ethanol_atoms(index: int = 0) -> ase.Atoms:
    """A fresh copy of one bundled ethanol geometry (9 atoms), without labels."""
    frame = _ethanol_frames()[index]
    return ase.Atoms(numbers=frame.numbers, positions=frame.positions)
