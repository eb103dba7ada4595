"""A multiple-time-step integrator: the direct force head every step, -dE/dR every k steps.

The direct force head costs one forward pass; the conservative forces -dE/dR a
forward and a backward pass (about 3x the time), but only they conserve energy.
Impulse multiple time stepping (r-RESPA, Tuckerman, Berne and Martyna 1992) gets
most of the speed of the first and the energy conservation of the second by
splitting the exact conservative force into a fast part and a correction:

    F = F_direct + (F_conservative - F_direct)
        fast, every step   correction, a kick of k * dt every k-th step

which is velocity Verlet with the effective force

    F_eff(step n) = F_direct + k (F_conservative - F_direct)   if n % k == 0
                  = F_direct                                    otherwise

On average over k steps the atoms feel exactly -dE/dR, so the energy they
conserve is the model's energy; the direct head only has to be close to it
(the Jacobian regularizer's job) for the splitting error to stay small.

With a friction (NVT) the step is BAOAB (Leimkuhler and Matthews 2013): the
Ornstein-Uhlenbeck velocity update sits between two half drifts; without
friction BAOAB is exactly velocity Verlet.
"""

from __future__ import annotations

import numpy as np
from ase import units as ase_units
from ase.md.md import MolecularDynamics


class MultipleTimeStepVerlet(MolecularDynamics):
    """ASE dynamics with a TriDFTCalculator: direct forces, corrected every ``every`` steps.

    timestep:         ASE time units (fs * ase.units.fs)
    every:            k, steps between conservative corrections (1: plain conservative MD)
    temperature_K:    of the Langevin thermostat (with ``friction`` > 0)
    friction:         1 / ASE time; 0: NVE
    """

    def __init__(self, atoms, timestep: float, every: int = 4, temperature_K: float = 0.0,
                 friction: float = 0.0, rng: np.random.Generator | None = None, **kwargs):
        super().__init__(atoms, timestep, **kwargs)
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        if not hasattr(atoms.calc, "force_source"):
            raise TypeError("MultipleTimeStepVerlet needs a TriDFTCalculator")
        self.every = every
        self.friction = friction
        self.temperature_K = temperature_K
        self.rng = rng or np.random.default_rng()
        self._forces = None  # effective forces at the current positions

    def effective_forces(self) -> np.ndarray:
        """(n, 3) eV/Angstrom at the current positions, for step number ``self.nsteps``."""
        calc = self.atoms.calc
        if self.nsteps % self.every == 0:
            calc.force_source = "both"
            conservative = self.atoms.get_forces()  # "both": forces are -dE/dR
            direct = calc.results["direct_forces"]
            forces = direct + self.every * (conservative - direct)
        else:
            calc.force_source = "direct"
            forces = self.atoms.get_forces()
        return forces

    def step(self, forces=None):
        atoms, dt = self.atoms, self.dt
        if self._forces is None:
            self._forces = self.effective_forces()
        masses = atoms.get_masses()[:, None]
        momenta = atoms.get_momenta() + 0.5 * dt * self._forces  # B
        atoms.set_positions(atoms.positions + 0.5 * dt * momenta / masses)  # A
        if self.friction > 0:  # O: exact Ornstein-Uhlenbeck step
            decay = np.exp(-self.friction * dt)
            thermal = np.sqrt(masses * ase_units.kB * self.temperature_K * (1 - decay**2))
            momenta = decay * momenta + thermal * self.rng.standard_normal(momenta.shape)
        atoms.set_momenta(momenta)
        momenta = atoms.get_momenta()  # after the constraints (FixCom) acted on them
        atoms.set_positions(atoms.positions + 0.5 * dt * momenta / masses)  # A
        self.nsteps += 1  # the forces below belong to the next step's number
        self._forces = self.effective_forces()
        self.nsteps -= 1  # MolecularDynamics.run counts the step itself
        atoms.set_momenta(momenta + 0.5 * dt * self._forces)  # B
        return self._forces
