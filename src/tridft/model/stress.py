"""Stress of periodic cells: the derivative of the energy with respect to a strain.

A symmetric strain eps (S, 3, 3), zero in value, deforms every structure of a batch
by D = I + eps: positions x -> D x and lattice vectors (rows of the cell) c -> D c.
The edge vectors r_ij = x_j - x_i + shift @ cell then become D r_ij, so one autograd
pass through the energy gives both

    forces  F = -dE/dx              (N, 3)     eV/Angstrom
    stress  sigma = (1/V) dE/deps   (S, 3, 3)  eV/Angstrom^3

with V = |det cell| (Angstrom^3). The sign is ASE's (``atoms.get_stress()``): a cell
that wants to shrink has positive (tensile) stress, and the pressure is
-trace(sigma) / 3. Structures without a periodic direction (molecules) have no
volume; their stress is defined as zero.

    strain = zero_strain(batch)
    energy = model(strained(batch, strain))["energy"]
    stress = stress_from_gradient(torch.autograd.grad(energy.sum(), strain)[0], batch)
"""

from __future__ import annotations

from dataclasses import replace

import torch

from tridft.data.batch import Batch


def zero_strain(batch: Batch) -> torch.Tensor:
    """(S, 3, 3) zeros in the dtype of the positions, requiring grad: the point eps = 0."""
    return torch.zeros(batch.n_structures, 3, 3, dtype=batch.positions.dtype,
                       device=batch.positions.device, requires_grad=True)


def strained(batch: Batch, strain: torch.Tensor) -> Batch:
    """``batch`` deformed by D = I + sym(strain) per structure: x -> D x, cell rows c -> D c.

    strain (S, 3, 3) dimensionless; only its symmetric part acts (a rotation is not a strain).
    """
    eye = torch.eye(3, dtype=strain.dtype, device=strain.device)
    deformation = eye + 0.5 * (strain + strain.transpose(1, 2))  # (S, 3, 3)
    per_atom = deformation.index_select(0, batch.structure_index)  # (N, 3, 3)
    positions = torch.einsum("nab,nb->na", per_atom, batch.positions)
    cell = batch.cell @ deformation.transpose(1, 2)  # rows c_k -> D c_k
    return replace(batch, positions=positions, cell=cell)


def cell_volumes(batch: Batch) -> torch.Tensor:
    """(S,) Angstrom^3: |det cell| of periodic structures, zero for molecules."""
    volumes = torch.linalg.det(batch.cell.detach().to(torch.float64)).abs()
    return torch.where(batch.pbc.any(dim=1), volumes, torch.zeros_like(volumes))


def stress_from_gradient(energy_gradient: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(S, 3, 3) eV/Angstrom^3 from dE/deps (S, 3, 3) eV; zero where there is no volume."""
    volumes = cell_volumes(batch).to(energy_gradient.device)
    periodic = volumes > 0
    safe = torch.where(periodic, volumes, torch.ones_like(volumes))
    stress = energy_gradient.to(torch.float64) / safe[:, None, None]
    return torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))


def pressure(stress: torch.Tensor) -> torch.Tensor:
    """(S,) eV/Angstrom^3: -trace(stress) / 3 (positive when the cell pushes outwards)."""
    return -stress.diagonal(dim1=-2, dim2=-1).sum(-1) / 3
