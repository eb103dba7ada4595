"""The Kohn-Sham SCF: RKS or UKS, density fitting, and one retry when it does not converge."""

from __future__ import annotations

import logging

import numpy as np

from tridft.label.pyscf_backend.settings import LabelFailure, LabelSettings

logger = logging.getLogger(__name__)

# Macro iterations of the second-order (Newton) solver in the one SCF retry.
NEWTON_MAX_CYCLE = 50


def make_scf(mol, settings: LabelSettings):
    """An unconverged KS object: RKS for singlets, UKS for open shells."""
    from pyscf import dft

    mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
    mf.xc = settings.xc
    mf.grids.level = settings.grid_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    mf.verbose = 0
    if settings.density_fit:
        auxbasis = None if settings.auxbasis.lower() == "auto" else settings.auxbasis
        mf = mf.density_fit(auxbasis=auxbasis)
    return mf


def run_scf(mf, dm0=None):
    """Converge ``mf`` in place; on failure retry once with a level shift and a Newton solver.

    Returns whether the retry was needed. The second-order solver's orbitals are
    copied back into ``mf``, so gradients and the CPKS response always come from a
    plain KS object. Raises LabelFailure if the retry fails too.
    """
    mf.kernel(dm0)
    if mf.converged:
        return False
    logger.info("SCF did not converge in %d cycles; retrying with a level shift "
                "and the second-order solver", mf.max_cycle)
    mf.level_shift = 0.25  # Hartree; widens the HOMO-LUMO gap while iterating only
    newton = mf.newton()
    newton.max_cycle = NEWTON_MAX_CYCLE  # its own budget: macro iterations are few but costly
    newton.kernel(mf.make_rdm1())
    mf.level_shift = 0.0
    if not newton.converged:
        raise LabelFailure(f"SCF did not converge ({mf.max_cycle} cycles, then {NEWTON_MAX_CYCLE} of "
                           f"the level-shifted second-order solver; last energy "
                           f"{newton.e_tot:.8f} Hartree)")
    # The Newton solver ends with canonical orbitals, which the CPKS equations need.
    mf.mo_coeff, mf.mo_occ, mf.mo_energy = newton.mo_coeff, newton.mo_occ, newton.mo_energy
    mf.e_tot, mf.converged = newton.e_tot, True
    return True


def is_open_shell(mf) -> bool:
    """Whether ``mf`` is unrestricted (two sets of orbitals)."""
    return np.asarray(mf.mo_occ).ndim == 2
