"""A neighbour list in TorchScript, for exported models (no vesin, no tridft at run time).

    edge_index, cell_shifts = neighbor_list(positions, cell, pbc, cutoff)

The same convention as tridft.data.neighbors: edge_index (2, E) long holds
[centers i, neighbours j], every pair in both directions; cell_shifts (E, 3) are the
integer lattice shifts S (as floats) with r_ij = x_j - x_i + S @ cell (rows of
``cell`` are the lattice vectors, Angstrom). Molecules (no periodic direction) and
cells periodic in all three directions are supported; every periodic image within
the cutoff is an edge, also in cells shorter than the cutoff.

Plain Python that TorchScript compiles when the exported program is scripted, and
that runs eagerly as well. Brute force: all atom pairs for every lattice shift that can hold a neighbour,
O(N^2 x shifts) in time and O(N^2) in memory, fine for the few hundred atoms a
TorchScript user typically evaluates; pass your own neighbour list for larger systems.
"""

from __future__ import annotations

from typing import Tuple

import torch


def lattice_shifts(cell: torch.Tensor, cutoff: float) -> torch.Tensor:
    """(K, 3) float: every integer shift S with |S_k| <= ceil(cutoff / h_k) + 1, h_k the
    distance between lattice planes k; enough for positions wrapped into the cell."""
    reciprocal = torch.linalg.inv(cell.to(torch.float64))  # columns b_k with a_i . b_k = d_ik
    heights = 1.0 / torch.linalg.norm(reciprocal, dim=0)  # (3,) Angstrom
    reach = torch.ceil(cutoff / heights).to(torch.long) + 1
    ranges = [torch.arange(-int(r), int(r) + 1, dtype=torch.float64) for r in reach]
    grid = torch.meshgrid(ranges[0], ranges[1], ranges[2], indexing="ij")
    return torch.stack([g.reshape(-1) for g in grid], dim=1)


def neighbor_list(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                  cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """All pairs closer than ``cutoff`` (Angstrom); see the module docstring."""
    x = positions.detach().to(torch.float64)
    n = x.shape[0]
    periodic = bool(pbc.any())
    if periodic and not bool(pbc.all()):
        raise RuntimeError("partially periodic cells are not supported: pass a neighbour list")
    box = cell.detach().to(torch.float64)
    offsets = torch.zeros(n, 3, dtype=torch.float64)  # integer cells of the wrapped atoms
    shifts = torch.zeros(1, 3, dtype=torch.float64)
    if periodic:
        fractional = x @ torch.linalg.inv(box)
        offsets = torch.floor(fractional)
        x = (fractional - offsets) @ box  # wrapped into the cell
        shifts = lattice_shifts(box, cutoff)
    same = torch.eye(n, dtype=torch.bool)
    centers, neighbors, found = [], [], []
    for k in range(shifts.shape[0]):
        shift = shifts[k]
        vectors = x.unsqueeze(0) - x.unsqueeze(1) + shift @ box  # (n, n, 3): [i, j] = x_j - x_i
        close = (vectors * vectors).sum(-1) < cutoff * cutoff
        if bool((shift == 0).all()):
            close = close & ~same
        pairs = close.nonzero()
        centers.append(pairs[:, 0])
        neighbors.append(pairs[:, 1])
        found.append(shift.expand(pairs.shape[0], 3))
    i = torch.cat(centers)
    j = torch.cat(neighbors)
    # Back to the unwrapped positions: x_wrapped = x - offset @ cell.
    cell_shifts = torch.cat(found) - offsets[j] + offsets[i]
    return torch.stack([i, j]), cell_shifts
