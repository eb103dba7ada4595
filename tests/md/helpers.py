"""Shared pieces of the MD tests: a small smooth model and ethanol as ase.Atoms."""

from __future__ import annotations

import ase

from tests.physics.helpers import _ethanol_frames
from tests.physics.helpers import perturbed_model as physics_model

# The MD test models have no core repulsion: from the physics tests' 1.2 Angstrom it
# walls in every bond to hydrogen of these untrained models, a stiffness that 0.5 fs
# steps integrate with an energy error of 2e-2 of the kinetic fluctuation (2.6e-4
# without it). Dynamics against the wall: tests/md/test_dynamics.py.
MD_REPULSION_ONSET = 0.0  # Angstrom: none


def perturbed_model(seed: int = 0, **overrides):
    """The physics tests' perturbed model without the core repulsion."""
    return physics_model(seed, **{"repulsion_onset": MD_REPULSION_ONSET, **overrides})


def ethanol_atoms(index: int = 0) -> ase.Atoms:
    """A fresh copy of one bundled ethanol geometry (9 atoms), without labels."""
    frame = _ethanol_frames()[index]
    return ase.Atoms(numbers=frame.numbers, positions=frame.positions)
