"""Real DFT labels for one molecule with PySCF: energy, forces, dipole, polarizability.

Everything PySCF computes is in atomic units (Hartree, bohr, e*bohr, bohr^3);
this package converts once, on the way out, with the constants of
:mod:`tridft.units`, so callers only ever see tridft's internal units
(eV, Angstrom, eV/Angstrom, e*Angstrom, Angstrom^3).

The defaults of :class:`LabelSettings` are the settings that labelled
``shared/data/ethanol_pbe_def2svp_800.extxyz`` (PBE/def2-SVP, density fitting,
grid level 2, SCF tolerance 1e-10 Hartree, CPKS tolerance 1e-9).

The static polarizability is the analytic second derivative of the energy with
respect to a uniform electric field, from the coupled-perturbed Kohn-Sham
(CPKS) equations. PySCF 2.14 ships no ``pyscf.prop``, so the CPKS solve is
written here (:func:`polarizability_au`), on top of ``pyscf.scf.cphf`` (closed
shell) and ``pyscf.scf.ucphf`` (open shell) and the SCF object's own response
function ``mf.gen_response(hermi=1)``, which knows about density
fitting and the exchange-correlation kernel. :func:`finite_field_polarizability`
is the slow, independent check.

The parts: :mod:`.settings` (what to compute, the errors), :mod:`.molecule`
(checking a structure, building the PySCF molecule, threads, imports), :mod:`.scf`
(the SCF with its one retry), :mod:`.properties` (dipole, forces) and
:mod:`.polarizability` (CPKS and finite field). Their public names are importable
from here.

>>> from tridft.label.pyscf_backend import LabelSettings, label_structure
>>> water = ([8, 1, 1], [[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]])
>>> labels = label_structure(*water, LabelSettings(basis="sto-3g"))  # doctest: +SKIP
>>> labels["polarizability"].shape  # doctest: +SKIP
(3, 3)
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from tridft.label.pyscf_backend.molecule import (build_molecule, check_functional,  # noqa: F401
                                                 check_structure, pyscf_threads, pyscf_version,
                                                 warm_up)
from tridft.label.pyscf_backend.polarizability import (FINITE_FIELD_AU,  # noqa: F401
                                                       finite_field_polarizability,
                                                       polarizability_au)
from tridft.label.pyscf_backend.properties import (charge_centre_bohr, dipole_au,  # noqa: F401
                                                   dipole_integrals, forces_au)
from tridft.label.pyscf_backend.scf import (NEWTON_MAX_CYCLE, is_open_shell, make_scf,  # noqa: F401
                                            run_scf)
from tridft.label.pyscf_backend.settings import (PROPERTIES, LabelFailure,  # noqa: F401
                                                 LabelSettings, NotSupported)
from tridft.units import BOHR3_ANGSTROM3, BOHR_ANGSTROM, HARTREE_EV


def label_structure(numbers: Sequence[int], positions_angstrom, settings: LabelSettings,
                    charge: int | None = None, multiplicity: int | None = None) -> dict:
    """Label one molecule with Kohn-Sham DFT; every number in tridft internal units.

    numbers:            (n,)   atomic numbers
    positions_angstrom: (n, 3) Angstrom
    charge, multiplicity: default to ``settings.charge`` and ``settings.multiplicity``

    Returns a dict with the requested properties of ``settings.properties``:
    ``energy`` (float, eV), ``forces`` ((n, 3), eV/Angstrom), ``dipole`` ((3,), e*Angstrom,
    origin at the centre of nuclear charge), ``polarizability`` ((3, 3), Angstrom^3), and
    always ``level_of_theory`` (str), ``program`` ("pyscf X.Y.Z"), ``wall_time_s`` (float),
    ``charge``, ``multiplicity``, ``scf_retried`` (bool).

    Raises InputError for bad input (unknown basis or functional, impossible electron
    count), LabelFailure when the SCF does not converge.
    """
    start = time.perf_counter()
    charge = settings.charge if charge is None else int(charge)
    multiplicity = settings.multiplicity if multiplicity is None else int(multiplicity)
    check_functional(settings.xc)
    mol = build_molecule(numbers, positions_angstrom, settings.basis, charge, multiplicity)
    with pyscf_threads(settings.threads):
        mf = make_scf(mol, settings)
        retried = run_scf(mf)
        labels = _properties(mf, settings)
    labels.update(level_of_theory=settings.level_of_theory, program=pyscf_version(),
                  wall_time_s=time.perf_counter() - start, charge=charge,
                  multiplicity=multiplicity, scf_retried=retried)
    return labels


def _properties(mf, settings: LabelSettings) -> dict:
    """The requested properties of a converged SCF, converted to internal units."""
    origin = charge_centre_bohr(mf.mol)
    out = {}
    if "energy" in settings.properties:
        out["energy"] = float(mf.e_tot) * HARTREE_EV
    if "forces" in settings.properties:
        out["forces"] = forces_au(mf) * (HARTREE_EV / BOHR_ANGSTROM)
    if "dipole" in settings.properties:
        out["dipole"] = dipole_au(mf, origin) * BOHR_ANGSTROM
    if "polarizability" in settings.properties:
        alpha = polarizability_au(mf, origin, tol=settings.cpks_tol)
        if not np.all(np.isfinite(alpha)):
            raise LabelFailure("CPKS polarizability is not finite")
        out["polarizability"] = alpha * BOHR3_ANGSTROM3
    return out
