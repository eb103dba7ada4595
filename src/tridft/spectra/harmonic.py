"""Harmonic vibrational frequencies from a model's (or any calculator's) Hessian.

    atoms.calc = TriDFTCalculator(model, forces="conservative")
    relax(atoms)                                     # to a minimum of the model
    hessian = model_hessian(model, atoms)            # (3n, 3n) eV/Angstrom^2, autograd
    result = harmonic_frequencies(hessian, atoms.get_masses(), atoms.positions)
    result.frequencies_cm1                           # (3n - 6,) cm^-1, ascending

Frequencies come from the mass-weighted Hessian restricted to the internal
coordinates: the rigid translations (and, for a molecule, rotations) are
projected out exactly, so the six (five if linear) zero modes are removed
rather than left as small numbers. Imaginary frequencies are returned negative.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace

import ase
import numpy as np
import torch

from tridft.data.batch import collate
from tridft.md.calculator import atoms_to_geometry
from tridft.model.model import ENERGY, TriDFTModel
from tridft.units import SQRT_EV_PER_A2_AMU_TO_CM1

logger = logging.getLogger(__name__)


@dataclass
class HarmonicResult:
    """Normal modes, M of them.

    frequencies_cm1         (M,)       ascending, negative = imaginary
    modes                   (M, n, 3)  Cartesian displacements, unit norm
    displacement_per_q      (M, n, 3)  Angstrom per unit normal coordinate Q
                                       (Q in Angstrom sqrt(amu)): dP/dQ = sum dP/dr . this
    """

    frequencies_cm1: np.ndarray
    modes: np.ndarray
    displacement_per_q: np.ndarray | None = None


def model_hessian(model: TriDFTModel, atoms: ase.Atoms,
                  dtype: torch.dtype = torch.float64) -> np.ndarray:
    """(3n, 3n) eV/Angstrom^2: second derivatives of the model energy, by autograd.

    Row and column index 3 * atom + xyz. Evaluated on a ``dtype`` copy of the model
    (float64 by default: second derivatives of a float32 model are noisy).
    """
    positions, gradient = energy_gradient(model, atoms, dtype)
    hessian = jacobian_rows(gradient.reshape(-1), positions).detach().cpu().numpy()
    return 0.5 * (hessian + hessian.T)


def energy_gradient(model: TriDFTModel, atoms: ase.Atoms,
                    dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, dE/dR), both (n, 3): the positions of ``atoms`` as a tensor that requires
    grad, and the gradient of the energy of a ``dtype`` copy of ``model`` with its graph,
    for second derivatives by autograd; on the model's device."""
    model = copy.deepcopy(model).to(dtype).eval()
    device = next(model.parameters()).device
    batch = collate([atoms_to_geometry(atoms)], model.cutoff, dtype=dtype).to(device)
    positions = batch.positions.detach().requires_grad_(True)
    with torch.enable_grad():
        energy = model(replace(batch, positions=positions))[ENERGY].sum()
        (gradient,) = torch.autograd.grad(energy, positions, create_graph=True)
    return positions, gradient


def jacobian_rows(outputs: torch.Tensor, inputs: torch.Tensor,
                  rows: torch.Tensor | None = None) -> torch.Tensor:
    """(K, inputs.numel()): v^T J for each of the K ``rows`` v (K, outputs.numel()), J the
    derivatives of the 1-D ``outputs`` (with a graph) by ``inputs``; without ``rows``,
    the identity: J itself, one row per output.

    One batched backward pass (vmap over the rows) where autograd supports it, else one
    backward pass per row.
    """
    if rows is None:
        rows = torch.eye(outputs.numel(), dtype=outputs.dtype, device=outputs.device)
    try:
        (jacobian,) = torch.autograd.grad(outputs, inputs, rows, retain_graph=True,
                                          is_grads_batched=True)
        return jacobian.reshape(len(rows), -1)
    except RuntimeError:  # an operation without a batching rule
        return torch.stack([torch.autograd.grad(outputs, inputs, row, retain_graph=True)[0]
                            .reshape(-1) for row in rows])


def finite_difference_hessian(atoms: ase.Atoms, delta: float = 0.005) -> np.ndarray:
    """(3n, 3n) eV/Angstrom^2 from central differences of the forces of ``atoms.calc``.

    Works with any ASE calculator (direct or conservative forces). Symmetrised,
    which for non-conservative (direct) forces hides their asymmetry.
    """
    positions = atoms.positions.copy()
    n = len(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    try:
        for k in range(3 * n):
            atom, axis = divmod(k, 3)
            forces = []
            for sign in (1.0, -1.0):
                displaced = positions.copy()
                displaced[atom, axis] += sign * delta
                atoms.positions = displaced
                forces.append(atoms.get_forces().reshape(-1))
            hessian[k] = -(forces[0] - forces[1]) / (2 * delta)
    finally:
        atoms.positions = positions
    return 0.5 * (hessian + hessian.T)


def rigid_body_modes(masses: np.ndarray, positions: np.ndarray,
                     rotations: bool = True) -> np.ndarray:
    """(3n, k) orthonormal mass-weighted translations (and rotations); k = 3, 5 or 6."""
    masses = np.asarray(masses, dtype=np.float64)
    sqrt_m = np.sqrt(masses)
    centred = positions - (masses[:, None] * positions).sum(0) / masses.sum()
    vectors = []
    for axis in np.eye(3):
        vectors.append((sqrt_m[:, None] * axis).reshape(-1))
        if rotations:
            vectors.append((sqrt_m[:, None] * np.cross(axis, centred)).reshape(-1))
    u, s, _ = np.linalg.svd(np.stack(vectors, axis=1), full_matrices=False)
    # A linear molecule has one rotation of zero length: keep only independent directions.
    return u[:, s > 1e-6 * s.max()]


def harmonic_frequencies(hessian: np.ndarray, masses: np.ndarray, positions: np.ndarray,
                         periodic: bool = False) -> HarmonicResult:
    """Frequencies (cm^-1) and normal modes of ``hessian`` (3n, 3n) eV/Angstrom^2.

    masses: (n,) amu; positions: (n, 3) Angstrom (for the rotations). A periodic
    structure has only the three translations removed.
    """
    masses = np.asarray(masses, dtype=np.float64)
    n = len(masses)
    hessian = 0.5 * (hessian + hessian.T)  # numerical Hessians are symmetric only nearly
    inverse_sqrt_m = np.repeat(masses ** -0.5, 3)  # (3n,)
    weighted = hessian * inverse_sqrt_m[:, None] * inverse_sqrt_m[None, :]  # eV/(A^2 amu)
    external = rigid_body_modes(masses, np.asarray(positions), rotations=not periodic)
    # An orthonormal basis of the internal space: the complement of the rigid-body modes.
    q, _ = np.linalg.qr(np.concatenate([external, np.eye(3 * n)], axis=1))
    internal = q[:, external.shape[1]:3 * n]
    eigenvalues, vectors = np.linalg.eigh(internal.T @ weighted @ internal)
    frequencies = np.sign(eigenvalues) * np.sqrt(np.abs(eigenvalues)) * SQRT_EV_PER_A2_AMU_TO_CM1
    per_q = (internal @ vectors) * inverse_sqrt_m[:, None]  # (3n, M) Angstrom per unit Q
    cartesian = per_q / np.linalg.norm(per_q, axis=0, keepdims=True)
    return HarmonicResult(frequencies_cm1=frequencies, modes=cartesian.T.reshape(-1, n, 3),
                          displacement_per_q=per_q.T.reshape(-1, n, 3))


def relax(atoms: ase.Atoms, fmax: float = 1e-3, steps: int = 500) -> bool:
    """Minimise the energy of ``atoms`` with its calculator (ASE BFGS); True if converged.

    Use conservative forces: a minimisation follows the forces, and frequencies are
    only meaningful at a stationary point of the energy whose Hessian is taken.
    """
    from ase.optimize import BFGS

    optimizer = BFGS(atoms, logfile=None)
    converged = bool(optimizer.run(fmax=fmax, steps=steps))
    if not converged:
        logger.warning("geometry not converged to fmax %.1e eV/A in %d steps", fmax, steps)
    return converged
