"""Constant-pressure (NPT) dynamics of periodic cells through ASE, driven by the model's stress.

    settings = MDSettings(ensemble="npt", barostat=Barostat(pressure_bar=1.0))
    run_md(water_box_with_calculator, settings, "npt.extxyz")

Two of ASE's integrators, both isotropic (the cell keeps its shape, its volume moves):

- "berendsen" (``ase.md.nptberendsen.NPTBerendsen``): weak coupling of temperature
  and pressure. It pulls the mean pressure to the target robustly, from any start,
  but does not sample the exact isothermal-isobaric fluctuations. The coupling
  strength is ``coupling_fs / compressibility``: give the compressibility of the
  material (water: 4.6e-5 / bar, the default).
- "mtk" (``ase.md.nose_hoover_chain.IsotropicMTKNPT``): Martyna-Tobias-Klein with
  Nose-Hoover chains, which samples the NPT ensemble. It needs forces that are the
  exact gradient of the energy (``--forces conservative``) and atoms without
  constraints (the centre of mass is not held).

The pressure the barostats hold is the full one, ideal-gas term included:
P = N k T / V - trace(stress) / 3, with the stress from the model
(tridft.model.stress) and T from the velocities.
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np
from ase import units as ase_units

from tridft.errors import InputError

BAROSTATS = ("berendsen", "mtk")
WATER_COMPRESSIBILITY_PER_BAR = 4.57e-5  # liquid water at 300 K


@dataclass(frozen=True)
class Barostat:
    """How the pressure is held.

    pressure_bar:             target pressure, bar (1 bar = 1e5 Pa = 6.24e-7 eV/Angstrom^3)
    kind:                     "berendsen" or "mtk"
    coupling_fs:              relaxation time of the volume (Berendsen taup, MTK pdamp), fs
    compressibility_per_bar:  isothermal compressibility of the material (Berendsen only)
    """

    pressure_bar: float = 1.0
    kind: str = "berendsen"
    coupling_fs: float = 1000.0
    compressibility_per_bar: float = WATER_COMPRESSIBILITY_PER_BAR

    def __post_init__(self):
        if self.kind not in BAROSTATS:
            raise InputError(f"barostat must be one of {', '.join(BAROSTATS)}, "
                             f"not '{self.kind}'")
        if not self.coupling_fs > 0 or not self.compressibility_per_bar > 0:
            raise InputError("the barostat coupling time and the compressibility must be > 0")

    @property
    def holds_centre_of_mass(self) -> bool:
        """Whether a FixCom constraint may be used (MTK supports no constraints)."""
        return self.kind == "berendsen"


def check_periodic(atoms: ase.Atoms) -> None:
    """InputError unless ``atoms`` are periodic in all three directions with a volume."""
    if not np.all(atoms.pbc) or abs(atoms.cell.volume) < 1e-9:
        raise InputError("NPT dynamics needs a cell periodic in all three directions "
                         "(a molecule has no pressure)")


def make_npt_integrator(atoms: ase.Atoms, barostat: Barostat, timestep_fs: float,
                        temperature_K: float, friction_per_fs: float, seed: int = 0):
    """The ASE integrator; the thermostat time is 1 / friction (at least 10 time steps)."""
    check_periodic(atoms)
    timestep = timestep_fs * ase_units.fs
    thermostat_fs = max(1.0 / friction_per_fs if friction_per_fs > 0 else 100.0,
                        10 * timestep_fs)
    pressure = barostat.pressure_bar * ase_units.bar  # eV/Angstrom^3
    if barostat.kind == "berendsen":
        from ase.md.nptberendsen import NPTBerendsen

        return NPTBerendsen(atoms, timestep, temperature_K=temperature_K, pressure_au=pressure,
                            taut=thermostat_fs * ase_units.fs,
                            taup=barostat.coupling_fs * ase_units.fs,
                            compressibility_au=barostat.compressibility_per_bar / ase_units.bar)
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    if atoms.constraints:
        raise InputError("the MTK barostat does not support constraints")
    return IsotropicMTKNPT(atoms, timestep, temperature_K=temperature_K, pressure_au=pressure,
                           tdamp=thermostat_fs * ase_units.fs,
                           pdamp=barostat.coupling_fs * ase_units.fs)


def pressure_bar(atoms: ase.Atoms) -> float:
    """The instantaneous pressure, bar: N k T / V (from the velocities) - trace(stress) / 3."""
    stress = atoms.get_stress(include_ideal_gas=True, voigt=True)
    return float(-np.mean(stress[:3]) / ase_units.bar)
