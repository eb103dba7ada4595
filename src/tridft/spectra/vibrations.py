"""Harmonic vibrational analysis of a model: frequencies, IR intensities, Raman activities.

    analysis = vibrational_analysis(model, atoms)   # relaxes a copy of atoms first
    analysis.frequencies_cm1                        # (M,) cm^-1
    analysis.raman_activity                         # (M,) Angstrom^4/amu, 45 a'^2 + 7 g'^2
    analysis.ir_intensity_km_mol                    # (M,) km/mol (models with a dipole head)

Everything comes from the model itself, in float64: the geometry relaxed with its
conservative forces, the Hessian of its energy, and the derivatives of its
polarizability (and dipole) along the normal coordinates Q (Angstrom sqrt(amu)):

    dP/dQ_k = sum_i dP/dr_i . d_ik          d_k: displacement per unit Q_k
    a'_k = tr(dalpha/dQ_k) / 3,   g'^2_k = 3/2 |dalpha/dQ_k - a'_k I|^2
    Raman activity S_k = 45 a'^2 + 7 g'^2   (linearly polarised light, all scattered light)
    IR intensity  A_k = (N_A pi / 3 c^2) |dmu/dQ_k|^2 / (4 pi eps0), in km/mol

A broadened spectrum puts a Lorentzian of ``fwhm_cm1`` at each frequency.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace

import ase
import numpy as np
import torch

from tridft.data.batch import collate
from tridft.md.calculator import TriDFTCalculator, atoms_to_geometry
from tridft.spectra.harmonic import harmonic_frequencies, jacobian_rows, model_hessian, relax
from tridft.spectra.correlation import RamanGeometry
from tridft.model.model import POLARIZABILITY, TriDFTModel
from tridft.units import IR_INTENSITY_E2_PER_AMU_TO_KM_MOL

logger = logging.getLogger(__name__)

DIPOLE = "dipole"


@dataclass
class VibrationalAnalysis:
    """The normal modes of a model at its own minimum; M modes of n atoms.

    atoms                 the relaxed structure (a copy; the input is left as it was)
    converged             whether the relaxation reached ``fmax``
    frequencies_cm1       (M,)        ascending, negative = imaginary
    modes                 (M, n, 3)   unit-norm Cartesian displacements
    raman_isotropic       (M,)        a'^2, Angstrom^4/amu
    raman_anisotropic     (M,)        g'^2, Angstrom^4/amu
    ir_intensity_km_mol   (M,) or None (no dipole head)
    """

    atoms: ase.Atoms
    converged: bool
    frequencies_cm1: np.ndarray
    modes: np.ndarray
    raman_isotropic: np.ndarray | None
    raman_anisotropic: np.ndarray | None
    ir_intensity_km_mol: np.ndarray | None

    def raman(self, geometry: RamanGeometry = RamanGeometry()) -> np.ndarray | None:
        """(M,) Angstrom^4/amu: the activity in ``geometry`` (default 45 a'^2 + 7 g'^2)."""
        if self.raman_isotropic is None:
            return None
        return 45.0 * geometry.intensity(self.raman_isotropic, self.raman_anisotropic)

    @property
    def raman_activity(self) -> np.ndarray | None:
        return self.raman()

    @property
    def depolarisation_ratio(self) -> np.ndarray | None:
        """(M,) for linearly polarised light: 3 g'^2 / (45 a'^2 + 4 g'^2), 0.75 at most."""
        if self.raman_isotropic is None:
            return None
        return RamanGeometry().depolarisation_ratio(self.raman_isotropic,
                                                    self.raman_anisotropic)


def vibrational_analysis(model: TriDFTModel, atoms: ase.Atoms, fmax: float = 1e-4,
                         steps: int = 2000, relax_first: bool = True) -> VibrationalAnalysis:
    """Relax a copy of ``atoms`` with the model's -dE/dR, then its harmonic analysis."""
    model = copy.deepcopy(model).to(torch.float64).eval()
    atoms = atoms.copy()
    converged = True
    if relax_first:
        atoms.calc = TriDFTCalculator(model, forces="conservative")
        converged = relax(atoms, fmax=fmax, steps=steps)
    periodic = bool(np.any(atoms.pbc))
    result = harmonic_frequencies(model_hessian(model, atoms), atoms.get_masses(),
                                  atoms.positions, periodic=periodic)
    per_q = result.displacement_per_q.reshape(len(result.frequencies_cm1), -1)  # (M, 3n)

    isotropic = anisotropic = ir = None
    if POLARIZABILITY in model.heads:
        d_alpha = per_q @ property_jacobian(model, atoms, POLARIZABILITY).T  # (M, 9)
        isotropic, anisotropic = raman_invariants(d_alpha.reshape(-1, 3, 3))
    if DIPOLE in model.heads:
        d_mu = per_q @ property_jacobian(model, atoms, DIPOLE).T  # (M, 3) e per sqrt(amu)
        ir = IR_INTENSITY_E2_PER_AMU_TO_KM_MOL * np.sum(d_mu**2, axis=1)
    return VibrationalAnalysis(atoms=atoms, converged=converged,
                               frequencies_cm1=result.frequencies_cm1, modes=result.modes,
                               raman_isotropic=isotropic, raman_anisotropic=anisotropic,
                               ir_intensity_km_mol=ir)


def property_jacobian(model: TriDFTModel, atoms: ase.Atoms, name: str) -> np.ndarray:
    """(C, 3n): derivatives of the C components of structure property ``name`` by autograd."""
    dtype = next(model.parameters()).dtype
    batch = collate([atoms_to_geometry(atoms)], model.cutoff, dtype=dtype)
    positions = batch.positions.detach().requires_grad_(True)
    with torch.enable_grad():
        value = model(replace(batch, positions=positions))[name][0].reshape(-1)
        return jacobian_rows(value, positions).detach().cpu().numpy()


def raman_invariants(d_alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a'^2 (M,), g'^2 (M,)) of polarizability derivatives (M, 3, 3).

    >>> a2, g2 = raman_invariants(np.diag([1.0, 0.0, -1.0])[None])
    >>> float(a2[0]), float(g2[0])
    (0.0, 3.0)
    """
    d_alpha = 0.5 * (d_alpha + np.swapaxes(d_alpha, 1, 2))
    trace = np.trace(d_alpha, axis1=1, axis2=2) / 3.0
    traceless = d_alpha - trace[:, None, None] * np.eye(3)
    return trace**2, 1.5 * np.sum(traceless**2, axis=(1, 2))


def broadened(frequencies_cm1: np.ndarray, intensities: np.ndarray, grid_cm1: np.ndarray,
              fwhm_cm1: float = 10.0) -> np.ndarray:
    """(G,) sum of Lorentzians of unit area times ``intensities`` on ``grid_cm1``."""
    half = 0.5 * fwhm_cm1
    offsets = grid_cm1[:, None] - np.asarray(frequencies_cm1)[None, :]
    return (half / np.pi / (offsets**2 + half**2)) @ np.asarray(intensities)
