"""Dynamics that blow up stop with a message, before a frame of nonsense is written.

    guard = BlowUpGuard(settings.temperature_K, n_atoms=len(atoms), path="md.extxyz")
    guard.check(step, potential, kinetic, temperature)   # every step

A model driven outside what it knows can pour energy into the atoms until the
temperature reaches 1e41 K and the numbers become NaN; the trajectory would then hold
frames that a spectrum happily transforms. The guard stops the run when the energy
or the temperature is not finite, when the temperature passes MAX_TEMPERATURE_FACTOR
times the target (and at least MIN_TEMPERATURE_LIMIT), or when the potential energy
moves more than MAX_POTENTIAL_CHANGE eV per atom from where it started.
"""

from __future__ import annotations

import math

from tridft.errors import TriDFTError

MAX_TEMPERATURE_FACTOR = 10.0
MIN_TEMPERATURE_LIMIT = 5000.0  # K
MAX_POTENTIAL_CHANGE = 5.0  # eV per atom


class BlowUpGuard:
    """Stops molecular dynamics whose energy or temperature explodes."""

    def __init__(self, temperature_K: float, n_atoms: int, path: str | None = None):
        self.limit_K = max(MAX_TEMPERATURE_FACTOR * temperature_K, MIN_TEMPERATURE_LIMIT)
        self.n_atoms = max(int(n_atoms), 1)
        self.path = path
        self.initial_potential: float | None = None
        self.last_good_step: int | None = None

    def check(self, step: int, potential: float, kinetic: float, temperature: float) -> None:
        """TriDFTError when this step's numbers show the dynamics blew up."""
        values = {"potential energy": potential, "kinetic energy": kinetic,
                  "temperature": temperature}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            self.stop(step, f"the {bad[0]} became {values[bad[0]]}")
        if temperature > self.limit_K:
            self.stop(step, f"the temperature reached {temperature:.3g} K, above the limit of "
                             f"{self.limit_K:.0f} K")
        if self.initial_potential is None:
            self.initial_potential = potential
        change = (potential - self.initial_potential) / self.n_atoms
        if abs(change) > MAX_POTENTIAL_CHANGE:
            self.stop(step, f"the potential energy moved {change:+.3g} eV per atom from the "
                             f"start (limit {MAX_POTENTIAL_CHANGE:g})")
        self.last_good_step = step

    def stop(self, step: int, what: str) -> None:
        """Raise the blow-up error: at ``step``, ``what`` went wrong."""
        kept = (f"{self.path} holds the frames up to step {self.last_good_step}"
                if self.path and self.last_good_step is not None else "no frame was written")
        raise TriDFTError(f"step {step}: {what}: the dynamics has blown up (the structure left "
                          f"what the model can describe; try a smaller --timestep, "
                          f"--forces conservative, or a thermostat); {kept}")
