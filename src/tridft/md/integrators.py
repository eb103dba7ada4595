"""Multiple time steps: a fast force every step, the rest of -dE/dR every k steps.

The conservative forces -dE/dR cost a forward and a backward pass of the model; only
they conserve energy. Impulse multiple time stepping (r-RESPA, Tuckerman, Berne and
Martyna 1992) evaluates them only every k-th step by splitting them into a fast part
and a correction:

    F = F_fast + (F_conservative - F_fast)
        every step   a kick of k * dt every k-th step

which is velocity Verlet with the effective force

    F_eff(step n) = F_fast + k (F_conservative - F_fast)   if n % k == 0
                  = F_fast                                  otherwise

On average over k steps the atoms feel exactly -dE/dR. Two fast forces:

- ``reference`` (tridft.md.reference.ValenceSprings, the default of ``tridft md --forces mts``):
  Morse springs on the bonds and across the bond angles, fitted to the model,
  evaluated in numpy without the model.
  They are the gradient of a potential, so the integrator is symplectic and
  time-reversible and conserves the model's energy as velocity Verlet does; the steps
  between corrections cost microseconds, so k steps cost little more than one
  conservative evaluation. The model's results (energy, polarizability, ...) exist
  only at the correction steps: observe and write trajectories every k steps.
- the direct force head (no reference): one forward pass per step. It is not the
  gradient of anything, and the work of its non-conservative part accumulates: the
  energy drifts, faster the more the two force estimates disagree (docs/spectra.md).

With a friction (NVT) the step is BAOAB (Leimkuhler and Matthews 2013): the
Ornstein-Uhlenbeck velocity update sits between two half drifts; without
friction BAOAB is exactly velocity Verlet.
"""

from __future__ import annotations

import numpy as np
from ase import units as ase_units
from ase.md.md import MolecularDynamics

from tridft.md.reference import ValenceSprings


class MultipleTimeStepVerlet(MolecularDynamics):
    """ASE dynamics with a TriDFTCalculator: a fast force, corrected every ``every`` steps.

    timestep:         ASE time units (fs * ase.units.fs)
    every:            k, steps between conservative corrections (1: plain conservative MD)
    reference:        the fast force: a ValenceSprings (tridft.md.reference), or None for
                      the model's direct force head
    temperature_K:    of the Langevin thermostat (with ``friction`` > 0)
    friction:         1 / ASE time; 0: NVE
    """

    def __init__(self, atoms, timestep: float, every: int = 4,
                 reference: ValenceSprings | None = None, temperature_K: float = 0.0,
                 friction: float = 0.0, rng: np.random.Generator | None = None, **kwargs):
        super().__init__(atoms, timestep, **kwargs)
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        if not hasattr(atoms.calc, "force_source"):
            raise TypeError("MultipleTimeStepVerlet needs a TriDFTCalculator")
        self.every = every
        self.reference = reference
        if reference is not None:  # the model is only evaluated for the corrections
            atoms.calc.force_source = "conservative"
        self.friction = friction
        self.temperature_K = temperature_K
        self.rng = rng or np.random.default_rng()
        self._forces = None  # effective forces at the current positions

    def effective_forces(self) -> np.ndarray:
        """(n, 3) eV/Angstrom at the current positions, for step number ``self.nsteps``."""
        calc = self.atoms.calc
        correction = self.nsteps % self.every == 0
        if self.reference is not None:
            fast = self.reference.forces(self.atoms.positions)
            if not correction:
                return fast
            calc.force_source = "conservative"
            return fast + self.every * (self.atoms.get_forces() - fast)
        if correction:
            calc.force_source = "both"
            conservative = self.atoms.get_forces()  # "both": forces are -dE/dR
            direct = calc.results["direct_forces"]
            return direct + self.every * (conservative - direct)
        calc.force_source = "direct"
        return self.atoms.get_forces()

    def _refresh_properties(self) -> None:
        """ASE asks for the forces after every step, for its observers; with a reference
        the model's results exist only at the correction steps (observe those)."""
        if self.reference is None or self.nsteps % self.every == 0:
            super()._refresh_properties()

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
