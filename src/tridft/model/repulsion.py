"""A screened nuclear repulsion below the shortest distances of the training data.

A learned potential knows nothing about distances shorter than any in its training
set; there its energy is whatever the network extrapolates to, often flat or
attractive, and molecular dynamics that wanders there (two hydrogens of neighbouring
water molecules in an NPT run) falls into a hole. Physics says what happens: the
nuclei repel. The prior adds, for every pair of atoms i, j closer than the shortest
distance r_c(Zi, Zj) of their element pair in training,

    E_rep = sum_{i<j} V_ZBL(r_ij) u(r_ij / r_c)

with V_ZBL the universal screened Coulomb repulsion of Ziegler, Biersack and
Littmark (as in MACE's and NequIP's ZBL terms),

    V_ZBL(r) = k Zi Zj / r * phi(r / a),  a = 0.46850 / (Zi^0.23 + Zj^0.23) Angstrom,
    phi(x) = 0.18175 e^-3.19980x + 0.50986 e^-0.94229x + 0.28022 e^-0.40290x
             + 0.02817 e^-0.20162x,

and u the smooth polynomial envelope (value, slope and curvature zero at r_c). Because
r_c is the shortest training distance, the prior is exactly zero on every training
structure: it changes neither training nor any prediction inside the training domain,
only the region the data never covered. Pairs of elements that training never saw
together start at the shortest distance of any pair.

The energy goes to the energy head's output; its analytic forces -dE_rep/dR go to the
direct force head's, so both force estimates see the same wall.
"""

from __future__ import annotations

import torch
from torch import nn

from tridft.model.scatter import scatter_sum

COULOMB = 14.399645  # e^2 / (4 pi eps0), eV*Angstrom
SCREENING_LENGTH = 0.46850  # 0.8854 a0, Angstrom
PHI_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
PHI_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)
ENVELOPE_EXPONENT = 6
N_ELEMENTS = 119  # atomic numbers 0..118


class CoreRepulsion(nn.Module):
    """E_rep (S,) eV and its forces (N, 3) eV/Angstrom from the edges of a batch.

    ``onsets`` (119, 119) Angstrom: r_c of each element pair (zero: no repulsion).
    A model without training data (built from a configuration alone) has all zeros
    until ``set_onsets`` gives it the table of a training set.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("onsets", torch.zeros(N_ELEMENTS, N_ELEMENTS))

    def set_onsets(self, shortest: torch.Tensor) -> None:
        """``shortest``: (119*119,) or (119, 119) shortest training distance by pair, read
        from the entries [Zi, Zj] with Zi <= Zj (as tridft.data.domain.Domain.shortest_table
        orders them) and mirrored; inf entries become zero."""
        table = torch.as_tensor(shortest, dtype=torch.float64).reshape(N_ELEMENTS, N_ELEMENTS)
        table = torch.where(torch.isfinite(table), table, torch.zeros_like(table))
        table = torch.triu(table) + torch.triu(table, diagonal=1).T  # either order of the pair
        self.onsets.copy_(table.to(self.onsets.dtype))

    @property
    def active(self) -> bool:
        return bool((self.onsets > 0).any())

    def close_edges(self, batch) -> torch.Tensor:
        """(M,) the numbers of the edges shorter than their pair's onset. Found without
        autograd: on training structures there are none, and the terms below then cost
        next to nothing (no graph over all E edges)."""
        with torch.no_grad():
            centers, neighbors = batch.edge_index
            codes = batch.numbers.index_select(0, centers) * N_ELEMENTS \
                + batch.numbers.index_select(0, neighbors)
            onset = self.onsets.reshape(-1).index_select(0, codes)  # (E,) Angstrom
            r = torch.linalg.vector_norm(batch.edge_vectors(), dim=-1)
            return torch.nonzero((r < onset.to(r.dtype)) & (onset > 0)).reshape(-1)

    def pair_terms(self, batch, edges: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For the edges numbered ``edges`` (M,): (energy per directed edge (M,) eV,
        dV/dr (M,) eV/Angstrom, edge vectors (M, 3) Angstrom)."""
        vectors = batch.edge_vectors(edges)  # differentiable in positions and cell
        z_i = batch.numbers.index_select(0, batch.edge_index[0].index_select(0, edges))
        z_j = batch.numbers.index_select(0, batch.edge_index[1].index_select(0, edges))
        onset = self.onsets.reshape(-1).index_select(0, z_i * N_ELEMENTS + z_j).to(vectors.dtype)
        r = torch.linalg.vector_norm(vectors, dim=-1)
        # r < onset for these edges; the clamp only keeps a rounding-level overshoot at zero.
        s = (r / onset).clamp(max=1.0)
        zz = (z_i * z_j).to(vectors.dtype)
        a = SCREENING_LENGTH / (z_i.to(vectors.dtype) ** 0.23 + z_j.to(vectors.dtype) ** 0.23)
        x = r / a
        phi = torch.zeros_like(x)
        phi_slope = torch.zeros_like(x)  # dphi/dx
        for c, d in zip(PHI_COEFFICIENTS, PHI_EXPONENTS):
            term = c * torch.exp(-d * x)
            phi = phi + term
            phi_slope = phi_slope - d * term
        coulomb = COULOMB * zz / r
        v = coulomb * phi  # eV
        v_slope = coulomb * (phi_slope / a - phi / r)  # dV/dr, eV/Angstrom
        p = ENVELOPE_EXPONENT
        u = (1 - (p + 1) * (p + 2) / 2 * s**p + p * (p + 2) * s ** (p + 1)
             - p * (p + 1) / 2 * s ** (p + 2))
        u_slope = (-(p + 1) * (p + 2) / 2 * p * s ** (p - 1) + p * (p + 2) * (p + 1) * s**p
                   - p * (p + 1) / 2 * (p + 2) * s ** (p + 1)) / onset  # du/dr
        return v * u, v_slope * u + v * u_slope, vectors

    def atomic_energies(self, batch) -> torch.Tensor:
        """(N,) eV: half of each pair's energy to each of its atoms."""
        edges = self.close_edges(batch)
        energy, _, _ = self.pair_terms(batch, edges)
        # Every pair appears as two directed edges: each carries half of the pair energy.
        centers = batch.edge_index[0].index_select(0, edges)
        return scatter_sum(0.5 * energy, centers, batch.positions.shape[0])

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(energy (S,) eV, forces (N, 3) eV/Angstrom) of the repulsion."""
        edges = self.close_edges(batch)
        n_atoms = batch.positions.shape[0]
        if edges.numel() == 0 and not torch.jit.is_tracing():
            # Every training step: nothing to add, and ~60 tiny operations (forward and both
            # backward passes) saved. A trace (tridft export) keeps the general path.
            return (batch.positions.new_zeros(batch.n_structures),
                    batch.positions.new_zeros(n_atoms, 3))
        energy, slope, vectors = self.pair_terms(batch, edges)
        centers = batch.edge_index[0].index_select(0, edges)
        neighbors = batch.edge_index[1].index_select(0, edges)
        # Every pair appears as two directed edges: each carries half of the pair energy.
        per_atom = scatter_sum(0.5 * energy, centers, n_atoms)
        energies = scatter_sum(per_atom, batch.structure_index, batch.n_structures)
        # dE/dx_j = +1/2 dV/dr u_ij and dE/dx_i = -1/2 dV/dr u_ij for the edge i -> j.
        r = torch.linalg.vector_norm(vectors.detach(), dim=-1)
        pull = (0.5 * slope.detach() / r).unsqueeze(-1) * vectors.detach()  # (M, 3)
        forces = scatter_sum(pull, centers, n_atoms) - scatter_sum(pull, neighbors, n_atoms)
        return energies, forces
