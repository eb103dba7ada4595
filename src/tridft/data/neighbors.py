"""Neighbour lists for molecules and periodic cells, computed with vesin.

For a periodic cell smaller than twice the cutoff an atom sees several images of
the same neighbour (and of itself); every image within the cutoff is one edge.

The inputs are checked before they reach vesin's native code, which cannot report
errors (it dies of a floating-point exception on a molecule spanning ~1e6 Angstrom):
finite positions and cutoff, a finite non-singular cell where periodic, and a bound on
the work. A structure spread over more than MAX_GRID_CELLS cutoffs along an axis is
searched another way (exact, and independent of the extent): a molecule with a k-d
tree, a periodic structure with ASE's neighbour list (a bounded number of bins).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import vesin

from tridft.errors import InputError

# Extent / cutoff along one axis above which vesin's cell grid is not used for molecules.
MAX_GRID_CELLS = 100
# Refuse periodic structures whose cell would give more edges than this (memory).
MAX_EDGES = 20_000_000


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
    _check_inputs(positions, cutoff, box, periodic)
    if len(positions) == 0:
        return NeighborList(*(np.zeros(0, dtype=np.int64),) * 2, np.zeros((0, 3), np.int64))
    if _spread(positions) > MAX_GRID_CELLS * cutoff or (
            periodic.any() and _heights(box).max() > MAX_GRID_CELLS * cutoff):
        # vesin's grid would have too many cells (and its native code can crash)
        if not periodic.any():
            return _tree_neighbor_list(positions, cutoff)
        return _ase_neighbor_list(positions, cutoff, box, periodic)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shifts = calculator.compute(points=positions, box=box, periodic=periodic.tolist(),
                                      quantities="ijS")
    return NeighborList(centers=i.astype(np.int64), neighbors=j.astype(np.int64),
                        shifts=shifts.astype(np.int64))


def _check_inputs(positions: np.ndarray, cutoff: float, box: np.ndarray,
                  periodic: np.ndarray) -> None:
    """InputError for what vesin's native code must never see."""
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise InputError(f"positions must have shape (n, 3), got {positions.shape}",
                         field="positions")
    if not np.all(np.isfinite(positions)):
        raise InputError("positions hold NaN or infinite values", field="positions")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise InputError(f"the cutoff must be a positive number, got {cutoff}")
    if box.shape != (3, 3) or periodic.shape != (3,):
        raise InputError(f"cell must be 3x3 and pbc 3 flags, got {box.shape} and "
                         f"{periodic.shape}", field="cell")
    if not periodic.any():
        return
    if not np.all(np.isfinite(box)):
        raise InputError("the cell holds NaN or infinite values", field="cell")
    volume = abs(float(np.linalg.det(box)))
    if volume < 1e-6:
        raise InputError(f"singular cell (|det| = {volume:.3g} Angstrom^3)", field="cell")
    # Edges within the cutoff: about n^2 * (sphere volume) / (cell volume), over the
    # periodic directions; a cell far too small for the cutoff would need gigabytes.
    sphere = 4.0 / 3.0 * np.pi * cutoff**3
    n = len(positions)
    expected = n * n * sphere / volume if periodic.all() else 0.0
    heights = _heights(box)
    images = np.prod([2 * np.ceil(cutoff / h) + 1 for h, p in zip(heights, periodic) if p])
    if expected > MAX_EDGES or n * n * images > 50 * MAX_EDGES:
        raise InputError(f"the cell (heights {', '.join(f'{h:.3g}' for h in heights)} "
                         f"Angstrom) is far too small for the cutoff {cutoff:g} Angstrom: "
                         f"about {max(expected, n * n * images):.3g} neighbour pairs",
                         field="cell")


def _heights(box: np.ndarray) -> np.ndarray:
    """(3,) distances between opposite faces of the cell, Angstrom."""
    volume = abs(float(np.linalg.det(box)))
    return volume / np.linalg.norm(np.cross(box[[1, 2, 0]], box[[2, 0, 1]]), axis=1)


def _ase_neighbor_list(positions: np.ndarray, cutoff: float, box: np.ndarray,
                       periodic: np.ndarray) -> NeighborList:
    from ase.neighborlist import primitive_neighbor_list

    i, j, shifts = primitive_neighbor_list("ijS", periodic, box, positions, cutoff,
                                           self_interaction=False, max_nbins=1e4)
    order = np.lexsort((j, i))
    return NeighborList(centers=i[order].astype(np.int64), neighbors=j[order].astype(np.int64),
                        shifts=shifts[order].astype(np.int64))


def _spread(positions: np.ndarray) -> float:
    """Largest extent of ``positions`` along x, y or z, Angstrom."""
    return float(np.max(np.ptp(positions, axis=0))) if len(positions) else 0.0


def _tree_neighbor_list(positions: np.ndarray, cutoff: float) -> NeighborList:
    """All pairs closer than ``cutoff`` of a molecule, by a k-d tree (no periodicity)."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(positions).query_pairs(r=cutoff, output_type="ndarray")
    pairs = pairs[np.linalg.norm(positions[pairs[:, 1]] - positions[pairs[:, 0]], axis=1)
                  < cutoff]  # query_pairs includes r == cutoff; vesin does not
    centers = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int64)
    neighbors = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int64)
    order = np.lexsort((neighbors, centers))
    return NeighborList(centers=centers[order], neighbors=neighbors[order],
                        shifts=np.zeros((len(order), 3), dtype=np.int64))
