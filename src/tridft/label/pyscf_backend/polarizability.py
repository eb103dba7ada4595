"""The static polarizability: analytic (CPKS) and, as the slow check, by finite field.

Both in bohr^3 inside, :func:`finite_field_polarizability` returns Angstrom^3.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tridft.label.pyscf_backend.molecule import build_molecule, pyscf_threads
from tridft.label.pyscf_backend.properties import charge_centre_bohr, dipole_au, dipole_integrals
from tridft.label.pyscf_backend.scf import is_open_shell, make_scf, run_scf
from tridft.label.pyscf_backend.settings import LabelSettings
from tridft.units import BOHR3_ANGSTROM3

# Field strength (atomic units, Hartree/(e*bohr)) of the finite-field check:
# small enough that hyperpolarizability terms stay below 1e-5 of alpha, large
# enough that the SCF tolerance does not swamp the dipole difference.
FINITE_FIELD_AU = 1e-3


def _occ_vir(mo_coeff, mo_occ):
    occupied = mo_occ > 0
    return mo_coeff[:, occupied], mo_coeff[:, ~occupied]


def _closed_shell_response(mf):
    """fvind for cphf: first-order orbitals (set, nvir, nocc) -> response (set, nvir, nocc)."""
    orbo, orbv = _occ_vir(mf.mo_coeff, mf.mo_occ)
    nvir, nocc = orbv.shape[1], orbo.shape[1]
    vresp = mf.gen_response(hermi=1)

    def fvind(mo1):
        mo1 = mo1.reshape(-1, nvir, nocc)
        # Density change of doubly occupied orbitals: 2 * (C_v U C_o^T + h.c.).
        dm1 = np.einsum("pa,xai,qi->xpq", orbv, mo1 * 2, orbo)
        dm1 = dm1 + dm1.transpose(0, 2, 1)
        v1 = vresp(dm1)
        return np.einsum("xpq,pa,qi->xai", v1, orbv, orbo)

    return fvind


def _open_shell_response(mf):
    """fvind for ucphf: alpha and beta first-order orbitals, concatenated per set."""
    (orbo_a, orbv_a), (orbo_b, orbv_b) = (_occ_vir(c, o) for c, o in
                                          zip(mf.mo_coeff, mf.mo_occ))
    shape_a = (orbv_a.shape[1], orbo_a.shape[1])
    shape_b = (orbv_b.shape[1], orbo_b.shape[1])
    n_a = shape_a[0] * shape_a[1]
    vresp = mf.gen_response(hermi=1)

    def fvind(mo1):
        mo1 = mo1.reshape(-1, n_a + shape_b[0] * shape_b[1])
        x_a = mo1[:, :n_a].reshape(-1, *shape_a)
        x_b = mo1[:, n_a:].reshape(-1, *shape_b)
        dm_a = np.einsum("pa,xai,qi->xpq", orbv_a, x_a, orbo_a)
        dm_b = np.einsum("pa,xai,qi->xpq", orbv_b, x_b, orbo_b)
        dm1 = np.stack([dm_a + dm_a.transpose(0, 2, 1), dm_b + dm_b.transpose(0, 2, 1)])
        v1 = vresp(dm1)
        v_a = np.einsum("xpq,pa,qi->xai", v1[0], orbv_a, orbo_a)
        v_b = np.einsum("xpq,pa,qi->xai", v1[1], orbv_b, orbo_b)
        return np.hstack([v_a.reshape(len(mo1), -1), v_b.reshape(len(mo1), -1)])

    return fvind


def polarizability_au(mf, origin_bohr, tol: float = 1e-9, max_cycle: int = 100) -> np.ndarray:
    """Static polarizability (bohr^3), shape (3, 3), from the CPKS equations.

    The perturbation is h1 = +F.r (the field acting on electrons of charge -1);
    the first-order orbitals U solve (e_a - e_i) U_ai + [v(dD)]_ai = -h1_ai, and
    alpha_xy = d(mu_x)/dF_y = -Tr(r_x dD/dF_y) = -n_occ * 2 sum_ai h1_x,ai U_y,ai
    with n_occ = 2 for a closed shell (1 per spin channel for an open shell).
    """
    from pyscf.scf import cphf, ucphf

    r = dipole_integrals(mf.mol, origin_bohr)
    if is_open_shell(mf):
        h1 = [np.einsum("xpq,pa,qi->xai", r, orbv, orbo)
              for orbo, orbv in (_occ_vir(c, o) for c, o in zip(mf.mo_coeff, mf.mo_occ))]
        mo1, _ = ucphf.solve(_open_shell_response(mf), mf.mo_energy, mf.mo_occ, h1,
                             max_cycle=max_cycle, tol=tol)
        e2 = sum(np.einsum("xai,yai->xy", h, u) for h, u in zip(h1, mo1))
        occupancy = 1.0
    else:
        orbo, orbv = _occ_vir(mf.mo_coeff, mf.mo_occ)
        h1 = np.einsum("xpq,pa,qi->xai", r, orbv, orbo)
        mo1, _ = cphf.solve(_closed_shell_response(mf), mf.mo_energy, mf.mo_occ, h1,
                            max_cycle=max_cycle, tol=tol)
        e2 = np.einsum("xai,yai->xy", h1, mo1)
        occupancy = 2.0
    # The factor 2 of (dD + dD^T); symmetrising removes the solver's residual asymmetry.
    return -occupancy * (e2 + e2.T)


def finite_field_polarizability(numbers: Sequence[int], positions_angstrom,
                                settings: LabelSettings, charge: int | None = None,
                                multiplicity: int | None = None,
                                field_au: float = FINITE_FIELD_AU) -> np.ndarray:
    """Polarizability (Angstrom^3, (3, 3)) as a central difference of the dipole.

    Six extra SCFs with a field of +-``field_au`` (atomic units) along x, y, z:
    alpha[:, j] = (mu(+F e_j) - mu(-F e_j)) / (2 F). Adding +F.r to the core
    Hamiltonian is the physical field for electrons of charge -1, so alpha is
    +d(mu)/dF. Slow (about 1.5x the analytic route); meant for validation.
    """
    charge = settings.charge if charge is None else int(charge)
    multiplicity = settings.multiplicity if multiplicity is None else int(multiplicity)
    mol = build_molecule(numbers, positions_angstrom, settings.basis, charge, multiplicity)
    origin = charge_centre_bohr(mol)
    r = dipole_integrals(mol, origin)
    alpha = np.zeros((3, 3))
    with pyscf_threads(settings.threads):
        reference = make_scf(mol, settings)
        run_scf(reference)
        dm0 = reference.make_rdm1()
        for j in range(3):
            dipoles = []
            for sign in (+1.0, -1.0):
                mf = make_scf(mol, settings)
                h_field = mf.get_hcore() + sign * field_au * r[j]
                mf.get_hcore = lambda *args, _h=h_field: _h
                run_scf(mf, dm0)
                dipoles.append(dipole_au(mf, origin))
            alpha[:, j] = (dipoles[0] - dipoles[1]) / (2 * field_au)
    return 0.5 * (alpha + alpha.T) * BOHR3_ANGSTROM3
