"""Every unit conversion in tridft, and nowhere else.

Internal units (see docs/architecture.md):

=================  =======================================
quantity           internal unit
=================  =======================================
energy             eV
length             Angstrom
force              eV / Angstrom
dipole             e * Angstrom
polarizability     Angstrom^3 (polarizability volume, alpha / (4 pi eps0))
=================  =======================================

Files may use other units. Each ``*_TO_INTERNAL`` table maps a unit name as a
user writes it (case-insensitive) to the factor that multiplies a value in that
unit to give the internal unit.
"""

from __future__ import annotations

from dataclasses import dataclass

HARTREE_EV = 27.211386245988
BOHR_ANGSTROM = 0.529177210903
KCAL_PER_MOL_EV = 0.0433641043
KJ_PER_MOL_EV = 0.0103642688
DEBYE_E_ANGSTROM = 0.20819433
# alpha in e*Angstrom^2/V times 1/(4 pi eps0) in V*Angstrom/e gives Angstrom^3.
E_ANGSTROM2_PER_V_ANGSTROM3 = 14.3996454
BOHR3_ANGSTROM3 = BOHR_ANGSTROM**3  # 0.148184711...

# Vibrational spectroscopy (CODATA 2018 exact or recommended values).
SPEED_OF_LIGHT_CM_PER_S = 2.99792458e10
HBAR_EV_S = 6.582119569e-16
BOLTZMANN_EV_PER_K = 8.617333262e-5
AMU_KG = 1.66053906660e-27
ELEMENTARY_CHARGE_C = 1.602176634e-19
# A frequency in 1/fs times this is a wavenumber in cm^-1 (1e15 / c).
INVERSE_FS_TO_CM1 = 1e15 / SPEED_OF_LIGHT_CM_PER_S  # 33356.41...
# Wavenumber (cm^-1) of a mass-weighted Hessian eigenvalue lam in eV/(Angstrom^2 amu):
# SQRT_EV_PER_A2_AMU_TO_CM1 * sqrt(lam)  (sqrt(lam) is an angular frequency; / 2 pi c).
SQRT_EV_PER_A2_AMU_TO_CM1 = (ELEMENTARY_CHARGE_C / (AMU_KG * 1e-20)) ** 0.5 / (
    2 * 3.141592653589793 * SPEED_OF_LIGHT_CM_PER_S)  # 521.47...
AVOGADRO_PER_MOL = 6.02214076e23
COULOMB_CONSTANT_SI = 8.9875517923e9  # 1 / (4 pi eps0), N m^2 / C^2
# Integrated IR absorption of a mode, A = N_A pi / (3 c^2) / (4 pi eps0) |dmu/dQ|^2,
# in km/mol for dmu/dQ in e*Angstrom / (Angstrom sqrt(amu)) = e / sqrt(amu).
IR_INTENSITY_E2_PER_AMU_TO_KM_MOL = (
    AVOGADRO_PER_MOL * 3.141592653589793 / (3 * (SPEED_OF_LIGHT_CM_PER_S / 100) ** 2)
    * COULOMB_CONSTANT_SI * ELEMENTARY_CHARGE_C**2 / AMU_KG / 1000)  # 974.88...

ENERGY_TO_INTERNAL = {
    "ev": 1.0,
    "mev": 1e-3,
    "hartree": HARTREE_EV,
    "ha": HARTREE_EV,
    "kcal/mol": KCAL_PER_MOL_EV,
    "kj/mol": KJ_PER_MOL_EV,
}
LENGTH_TO_INTERNAL = {
    "angstrom": 1.0,
    "a": 1.0,
    "bohr": BOHR_ANGSTROM,
    "nm": 10.0,
}
POLARIZABILITY_TO_INTERNAL = {
    "angstrom^3": 1.0,
    "a^3": 1.0,
    "bohr^3": BOHR3_ANGSTROM3,
    "au": BOHR3_ANGSTROM3,
    "e*angstrom^2/v": E_ANGSTROM2_PER_V_ANGSTROM3,
}
DIPOLE_TO_INTERNAL = {
    "e*angstrom": 1.0,
    "e*a": 1.0,
    "debye": DEBYE_E_ANGSTROM,
    "e*bohr": BOHR_ANGSTROM,
    "au": BOHR_ANGSTROM,
}

_TABLES = {
    "energy": ENERGY_TO_INTERNAL,
    "length": LENGTH_TO_INTERNAL,
    "polarizability": POLARIZABILITY_TO_INTERNAL,
    "dipole": DIPOLE_TO_INTERNAL,
}


class UnknownUnitError(ValueError):
    """A unit name that tridft does not know."""


def factor(quantity: str, unit: str) -> float:
    """Factor that converts a value of ``quantity`` given in ``unit`` to internal units.

    >>> round(factor("energy", "Hartree"), 6)
    27.211386
    """
    table = _TABLES[quantity]
    key = unit.strip().lower().replace(" ", "")
    if key not in table:
        known = ", ".join(sorted(table))
        raise UnknownUnitError(f"unknown {quantity} unit '{unit}' (known: {known})")
    return table[key]


@dataclass(frozen=True)
class UnitSpec:
    """The units a file uses. Forces are energy/length, derived, never given separately."""

    energy: str = "eV"
    length: str = "Angstrom"
    polarizability: str = "Angstrom^3"
    dipole: str = "e*Angstrom"

    def validate(self) -> None:
        """Raise UnknownUnitError naming the first unit that is not known."""
        for quantity in _TABLES:
            self.factor(quantity)

    def factor(self, quantity: str) -> float:
        """The factor of ``quantity`` (energy, length, polarizability, dipole) to internal units."""
        return factor(quantity, getattr(self, quantity))

    energy_factor = property(lambda self: self.factor("energy"))
    length_factor = property(lambda self: self.factor("length"))
    polarizability_factor = property(lambda self: self.factor("polarizability"))
    dipole_factor = property(lambda self: self.factor("dipole"))

    @property
    def force_factor(self) -> float:
        return self.energy_factor / self.length_factor
