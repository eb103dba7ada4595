"""Geometry and cell relaxation with ASE optimisers and the model's forces and stress.

    from tridft import TriDFTCalculator
    from tridft.md.relax import relax

    atoms.calc = TriDFTCalculator("model.pt", forces="conservative")
    result = relax(atoms, fmax=0.01, cell=True, pressure_bar=0.0)
    result.converged, result.steps, atoms.cell

With ``cell=True`` (periodic structures only) the positions and the cell relax
together under ASE's FrechetCellFilter: the generalised forces of the cell are the
stress (minus the target pressure) times the volume per atom. Converged means every
atomic force and every such cell force is below ``fmax`` (eV/Angstrom).

Use conservative forces (-dE/dR): an optimiser minimises the energy, and only
those forces are its exact gradient; the direct force head is close but not exact,
which shows as a relaxation that stalls a little above a small ``fmax``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import ase
import numpy as np
from ase import units as ase_units

from tridft.errors import InputError

logger = logging.getLogger(__name__)

OPTIMIZERS = ("FIRE", "BFGS", "LBFGS")


@dataclass
class RelaxResult:
    """converged; steps taken; final energy (eV), largest force (eV/A), stress (6,) eV/A^3
    (zeros without cell relaxation) and volume (A^3, zero for a molecule)."""

    converged: bool
    steps: int
    energy: float
    max_force: float
    stress: np.ndarray
    volume: float


def relax(atoms: ase.Atoms, fmax: float = 0.01, steps: int = 500, cell: bool = False,
          pressure_bar: float = 0.0, optimizer: str = "FIRE",
          trajectory: str | os.PathLike | None = None) -> RelaxResult:
    """Relax ``atoms`` in place (positions, and the cell with ``cell``); see the module doc."""
    if atoms.calc is None:
        raise InputError("the structure has no calculator attached")
    if optimizer not in OPTIMIZERS:
        raise InputError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not '{optimizer}'")
    if cell and not (np.all(atoms.pbc) and atoms.cell.volume > 1e-9):
        raise InputError("cell relaxation needs a cell periodic in all three directions")
    if getattr(atoms.calc, "force_source", "conservative") == "direct":
        logger.info("relaxing with the direct force head: use forces='conservative' for the "
                    "exact gradient of the energy")
    target = atoms
    if cell:
        from ase.filters import FrechetCellFilter

        target = FrechetCellFilter(atoms, scalar_pressure=pressure_bar * ase_units.bar)
    from ase import optimize

    dynamics = getattr(optimize, optimizer)(target, logfile=None,
                                            trajectory=None if trajectory is None
                                            else str(trajectory))
    converged = bool(dynamics.run(fmax=fmax, steps=steps))
    forces = atoms.get_forces()
    return RelaxResult(converged=converged, steps=int(dynamics.nsteps),
                       energy=float(atoms.get_potential_energy()),
                       max_force=float(np.linalg.norm(forces, axis=1).max(initial=0.0)),
                       stress=atoms.get_stress() if cell else np.zeros(6),
                       volume=float(atoms.get_volume()) if np.any(atoms.pbc) else 0.0)
