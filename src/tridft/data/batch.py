"""The batch type: many structures as one flat graph.

This is the one place where the shapes and units of the tensors that cross
module boundaries are written down. N atoms, S structures, E directed edges.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch

from tridft.data.neighbors import NeighborList, neighbor_list
from tridft.data.record import Record


# Fields that stay float64 whatever the model's dtype.
FLOAT64_FIELDS = ("energy",)


@dataclass
class Batch:
    """A flat graph of S structures with N atoms and E edges.

    Geometry
      numbers          (N,)      long    atomic numbers
      positions        (N, 3)    float   Angstrom
      structure_index  (N,)      long    structure of each atom, 0..S-1, sorted
      n_atoms          (S,)      long    atoms per structure
      cell             (S, 3, 3) float   Angstrom, rows are lattice vectors (zeros for molecules)
      pbc              (S, 3)    bool    periodic directions
      edge_index       (2, E)    long    [centers i, neighbours j], flat atom indices
      cell_shifts      (E, 3)    float   integer shifts S: r_ij = r_j - r_i + S @ cell

    Positions are centred per structure (their mean subtracted in float64 before the
    cast to the model's dtype): every model output is translation invariant, and
    small coordinates keep float32 positions precise for molecules far from the origin.

    Labels (internal units) and their masks; a masked-out entry holds zeros
    that no loss or metric may read.
      energy               (S,)       float64 eV, always float64 (totals of thousands of eV)
      energy_mask          (S,)       bool
      forces               (N, 3)     float  eV/Angstrom
      forces_mask          (N,)       bool   per atom, True where its structure has forces
      polarizability       (S, 3, 3)  float  Angstrom^3
      polarizability_mask  (S,)       bool
      dipole               (S, 3)     float  e*Angstrom
      dipole_mask          (S,)       bool
      extra                name -> (values (S, ...), mask (S,)) further per-structure labels
      atom_extra           name -> (values (N, ...), mask (N,)) further per-atom labels
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    structure_index: torch.Tensor
    n_atoms: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    edge_index: torch.Tensor
    cell_shifts: torch.Tensor
    energy: torch.Tensor
    energy_mask: torch.Tensor
    forces: torch.Tensor
    forces_mask: torch.Tensor
    polarizability: torch.Tensor
    polarizability_mask: torch.Tensor
    dipole: torch.Tensor
    dipole_mask: torch.Tensor
    extra: dict[str, tuple[torch.Tensor, torch.Tensor]]
    atom_extra: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def n_structures(self) -> int:
        return int(self.n_atoms.shape[0])

    def edge_vectors(self, edges: torch.Tensor | None = None) -> torch.Tensor:
        """(E, 3) Angstrom: r_ij = r_j - r_i + shift @ cell, differentiable in positions and
        cell; of the edges numbered ``edges`` (M,) only, (M, 3), when given."""
        centers, neighbors = self.edge_index
        shifts = self.cell_shifts
        if edges is not None:
            centers, neighbors = centers.index_select(0, edges), neighbors.index_select(0, edges)
            shifts = shifts.index_select(0, edges)
        # index_select, not advanced indexing: several times faster on a CPU, in the
        # forward pass and (as index_add) in the backward passes of training.
        vectors = self.positions.index_select(0, neighbors) \
            - self.positions.index_select(0, centers)
        if bool(self.pbc.any()):  # molecules have no cell shifts: skip the cell term
            cells = self.cell.index_select(0, self.structure_index.index_select(0, centers))
            vectors = vectors + torch.einsum("ek,ekl->el", shifts, cells)
        return vectors

    def to(self, device=None, dtype: torch.dtype | None = None) -> "Batch":
        """A copy on ``device`` with floating tensors cast to ``dtype``."""

        def move(tensor: torch.Tensor) -> torch.Tensor:
            if dtype is not None and tensor.is_floating_point():
                return tensor.to(device=device, dtype=dtype)
            return tensor.to(device=device)

        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in FLOAT64_FIELDS:
                changes[f.name] = value.to(device=device)
            elif isinstance(value, torch.Tensor):
                changes[f.name] = move(value)
        for name in ("extra", "atom_extra"):
            changes[name] = {key: (move(v), m.to(device=device))
                             for key, (v, m) in getattr(self, name).items()}
        return replace(self, **changes)


def _stack_label(values: list, mask: list[bool], shape: tuple[int, ...]) -> torch.Tensor:
    array = np.zeros((len(values),) + shape)
    for k, (value, present) in enumerate(zip(values, mask)):
        if present:
            array[k] = value
    return torch.from_numpy(array)


def collate(records: Sequence[Record], cutoff: float,
            neighbor_lists: Sequence[NeighborList] | None = None,
            dtype: torch.dtype | None = None) -> Batch:
    """Join ``records`` into one Batch; neighbour lists are computed unless given.

    >>> import numpy as np
    >>> from tridft.data.record import Record
    >>> water = Record(numbers=np.array([8, 1, 1]),
    ...                positions=np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    >>> batch = collate([water, water], cutoff=3.0)
    >>> batch.n_structures, batch.edge_index.shape
    (2, torch.Size([2, 12]))
    """
    if len(records) == 0:
        raise ValueError("cannot collate an empty list of structures")
    dtype = dtype or torch.get_default_dtype()
    if neighbor_lists is None:
        neighbor_lists = [neighbor_list(r.positions, cutoff, r.cell, r.pbc) for r in records]

    n_atoms = np.array([r.n_atoms for r in records], dtype=np.int64)
    first_atom = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    edge_index = np.concatenate(
        [np.stack([nl.centers, nl.neighbors]) + offset
         for nl, offset in zip(neighbor_lists, first_atom)], axis=1)
    cell_shifts = np.concatenate([nl.shifts for nl in neighbor_lists], axis=0)
    cells = np.stack([np.zeros((3, 3)) if r.cell is None else r.cell for r in records])

    energy_mask = [r.energy is not None for r in records]
    polar_mask = [r.polarizability is not None for r in records]
    dipole_mask = [r.dipole is not None for r in records]
    forces = np.zeros((int(n_atoms.sum()), 3))
    forces_mask = np.zeros(int(n_atoms.sum()), dtype=bool)
    for r, offset in zip(records, first_atom):
        if r.forces is not None:
            forces[offset:offset + r.n_atoms] = r.forces
            forces_mask[offset:offset + r.n_atoms] = True

    extra = {name: _collate_structure_extra(records, name, dtype)
             for name in sorted({name for r in records for name in r.extra})}
    atom_extra = {name: _collate_atom_extra(records, name, first_atom, dtype)
                  for name in sorted({name for r in records for name in r.atom_extra})}

    def as_float(array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=dtype)

    return Batch(
        numbers=torch.from_numpy(np.concatenate([r.numbers for r in records]).astype(np.int64)),
        positions=as_float(np.concatenate([r.positions - r.positions.mean(axis=0)
                                           for r in records])),
        structure_index=torch.from_numpy(np.repeat(np.arange(len(records)), n_atoms)),
        n_atoms=torch.from_numpy(n_atoms),
        cell=as_float(cells),
        pbc=torch.from_numpy(np.stack([np.asarray(r.pbc, dtype=bool) for r in records])),
        edge_index=torch.from_numpy(edge_index.astype(np.int64)),
        cell_shifts=as_float(cell_shifts),
        energy=torch.tensor([r.energy if r.energy is not None else 0.0 for r in records],
                            dtype=torch.float64),
        energy_mask=torch.tensor(energy_mask),
        forces=as_float(forces),
        forces_mask=torch.from_numpy(forces_mask),
        polarizability=_stack_label([r.polarizability for r in records], polar_mask,
                                    (3, 3)).to(dtype),
        polarizability_mask=torch.tensor(polar_mask),
        dipole=_stack_label([r.dipole for r in records], dipole_mask, (3,)).to(dtype),
        dipole_mask=torch.tensor(dipole_mask),
        extra=extra,
        atom_extra=atom_extra,
    )


def _collate_structure_extra(records: Sequence[Record], name: str, dtype: torch.dtype):
    shape = next(np.shape(r.extra[name]) for r in records if name in r.extra)
    mask = [name in r.extra for r in records]
    values = _stack_label([r.extra.get(name) for r in records], mask, shape)
    return values.to(dtype), torch.tensor(mask)


def _collate_atom_extra(records: Sequence[Record], name: str, first_atom: np.ndarray,
                        dtype: torch.dtype):
    shape = next(np.shape(r.atom_extra[name])[1:] for r in records if name in r.atom_extra)
    total = int(sum(r.n_atoms for r in records))
    values = np.zeros((total,) + shape)
    mask = np.zeros(total, dtype=bool)
    for r, offset in zip(records, first_atom):
        if name in r.atom_extra:
            values[offset:offset + r.n_atoms] = r.atom_extra[name]
            mask[offset:offset + r.n_atoms] = True
    return torch.as_tensor(values, dtype=dtype), torch.from_numpy(mask)
