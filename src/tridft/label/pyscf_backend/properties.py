"""Dipole and forces of a converged SCF, in atomic units (e*bohr, Hartree/bohr)."""

from __future__ import annotations

import numpy as np


def charge_centre_bohr(mol) -> np.ndarray:
    """Centre of nuclear charge (bohr): the dipole origin, as in the reference data."""
    charges = mol.atom_charges()
    return charges @ mol.atom_coords() / charges.sum()


def dipole_integrals(mol, origin_bohr) -> np.ndarray:
    """<mu| r - origin |nu>, shape (3, nao, nao), bohr."""
    with mol.with_common_orig(origin_bohr):
        return mol.intor_symmetric("int1e_r", comp=3)


def dipole_au(mf, origin_bohr) -> np.ndarray:
    """Dipole moment (e*bohr): nuclear minus electronic, about ``origin_bohr``."""
    mol = mf.mol
    dm = mf.make_rdm1()
    if dm.ndim == 3:  # alpha + beta density
        dm = dm[0] + dm[1]
    electronic = np.einsum("xij,ji->x", dipole_integrals(mol, origin_bohr), dm)
    nuclear = mol.atom_charges() @ (mol.atom_coords() - origin_bohr)
    return nuclear - electronic


def forces_au(mf) -> np.ndarray:
    """Forces (Hartree/bohr), shape (n, 3): minus the analytic nuclear gradient."""
    grad = mf.nuc_grad_method()
    grad.verbose = 0
    return -np.asarray(grad.kernel())
