"""Charge equilibration: atomic charges that minimise an electrostatic energy per molecule.

Each atom i carries a Gaussian charge q_i of width sigma_i, an electronegativity chi_i and
a hardness J_i (both learned from its environment). The charges minimise

    E(q) = sum_i (chi_i q_i + 1/2 (J_i + 1 / (sigma_i sqrt(pi))) q_i^2)
           + sum_{i<j} q_i q_j erf(r_ij / sqrt(2 (sigma_i^2 + sigma_j^2))) / r_ij

subject to sum_i q_i = Q (the molecule's total charge), as in QEq (Rappe and Goddard
1991) with environment-dependent chi (Ghasemi et al. 2015; Ko et al. 2021). The
Lagrange conditions are one linear system per molecule:

    [ H   1 ] [ q      ]   [ -chi ]
    [ 1^T 0 ] [ lambda ] = [  Q   ]

The Gaussian Coulomb matrix with its self-energy 1 / (sigma sqrt(pi)) on the diagonal is
positive definite (it is the Coulomb energy of a charge density), and J_i >= 0 only adds
to it, so the system always has one solution. Unlike charges read off one atom's
environment, these see the whole molecule: charge flows across a conjugated chain
towards its most electronegative end.

Units: Coulomb terms in 1/Angstrom (the constant e^2 / (4 pi eps0) is absorbed into chi
and J, which are learned), widths in Angstrom, charges in e.
"""

from __future__ import annotations

import math

import torch


def equilibrated_charges(electronegativity: torch.Tensor, hardness: torch.Tensor,
                         widths: torch.Tensor, positions: torch.Tensor,
                         structure_index: torch.Tensor, total_charge: torch.Tensor
                         ) -> torch.Tensor:
    """(N,) e: the charges minimising E(q) in every structure, summing to its total charge.

    electronegativity  (N,)  chi_i, 1/Angstrom
    hardness           (N,)  J_i >= 0, 1/Angstrom
    widths             (N,)  sigma_i > 0, Angstrom
    positions          (N, 3) Angstrom (molecules: no periodic images)
    structure_index    (N,)  structure of each atom, 0..S-1
    total_charge       (S,)  e

    One dense solve over the whole batch: pairs from different structures are zero in
    H, so the system is block-diagonal and each molecule's charges are its own.
    """
    n_atoms, n_structures = positions.shape[0], total_charge.shape[0]
    same = structure_index.unsqueeze(0) == structure_index.unsqueeze(1)  # (N, N)
    diagonal = torch.eye(n_atoms, dtype=torch.bool, device=positions.device)
    pairs = same & ~diagonal
    differences = positions.unsqueeze(1) - positions.unsqueeze(0)  # (N, N, 3) Angstrom
    # Squared distances of the pairs that interact; 1 elsewhere, so that neither the
    # square root nor its gradient sees a zero (atoms of two molecules may coincide).
    squared = torch.where(pairs, (differences * differences).sum(-1),
                          torch.ones((), dtype=positions.dtype, device=positions.device))
    distances = torch.sqrt(squared)  # (N, N)
    combined = torch.sqrt(2 * (widths.unsqueeze(0) ** 2 + widths.unsqueeze(1) ** 2))
    coulomb = torch.where(pairs, torch.erf(distances / combined) / distances,
                          torch.zeros((), dtype=positions.dtype, device=positions.device))
    self_energy = hardness + 1.0 / (widths * math.sqrt(math.pi))  # (N,)
    interaction = coulomb + torch.diag(self_energy)  # (N, N) H
    membership = torch.zeros(n_structures, n_atoms, dtype=positions.dtype,
                             device=positions.device)
    membership[structure_index, torch.arange(n_atoms, device=positions.device)] = 1.0
    system = torch.cat([torch.cat([interaction, membership.T], dim=1),
                        torch.cat([membership, membership.new_zeros(n_structures,
                                                                    n_structures)], dim=1)])
    right = torch.cat([-electronegativity, total_charge.to(positions.dtype)])
    return torch.linalg.solve(system, right)[:n_atoms]
