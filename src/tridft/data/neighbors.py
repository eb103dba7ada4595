"""Neighbour lists for molecules and periodic cells, computed with vesin.

For a periodic cell smaller than twice the cutoff an atom sees several images of
the same neighbour (and of itself); every image within the cutoff is one edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin


@dataclass
class NeighborList:
    """Directed edges i -> j of one structure, each pair present in both directions.

    centers:   (E,)   int   index i of the atom whose environment is described
    neighbors: (E,)   int   index j of the neighbouring atom
    shifts:    (E, 3) int   cell shift S so that r_ij = r_j - r_i + S @ cell
    """

    centers: np.ndarray
    neighbors: np.ndarray
    shifts: np.ndarray


def neighbor_list(positions: np.ndarray, cutoff: float, cell: np.ndarray | None = None,
                  pbc: np.ndarray | None = None) -> NeighborList:
    """All pairs closer than ``cutoff`` (Angstrom), with periodic images where ``pbc``.

    >>> import numpy as np
    >>> nl = neighbor_list(np.array([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]]), cutoff=2.0)
    >>> sorted(zip(nl.centers.tolist(), nl.neighbors.tolist()))
    [(0, 1), (1, 0)]
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    periodic = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    box = np.zeros((3, 3)) if cell is None else np.ascontiguousarray(cell, dtype=np.float64)
    if not periodic.any():
        box = np.zeros((3, 3))
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = calculator.compute(points=positions, box=box, periodic=periodic.tolist(),
                                      quantities="ijS")
    return NeighborList(centers=i.astype(np.int64), neighbors=j.astype(np.int64),
                        shifts=shifts.astype(np.int64))
