"""Checks on structures and labels, each failure one InputError naming file, structure and field.

Two kinds of helpers:

- ``as_energy``, ``as_forces``, ``as_polarizability``, ``as_dipole`` turn a raw value
  read from a file into the array shape of a Record (or raise);
- ``check_record`` looks at a whole Record in internal units: geometry, cell, finite
  values, polarizability symmetry, atoms on top of each other.

``symmetrize_polarizabilities`` then makes slightly asymmetric tensors symmetric and
says so once per file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tridft.data.neighbors import neighbor_list
from tridft.data.record import DIPOLE, ENERGY, FORCES, POLARIZABILITY, Record
from tridft.errors import InputError

logger = logging.getLogger(__name__)

MIN_DISTANCE = 0.1  # Angstrom; closer atoms are a broken structure, not physics
MIN_CELL_VOLUME = 1e-6  # Angstrom^3; |det(cell)| below this is a singular cell
# Angstrom; a molecule wider than this is a unit or typing mistake, not a molecule.
MAX_MOLECULE_SPREAD = 1e4
MAX_ATOMIC_NUMBER = 118
_SEARCH_RADIUS = 2.0  # Angstrom; see _short_pairs
_ALL_PAIRS_ATOMS = 256  # molecules up to this size are checked pair by pair
# ||a - a^T|| / ||a|| above this is an error; between ROUNDING and this, a warning.
POLARIZABILITY_ASYMMETRY = 1e-2
# Below this the asymmetry is only rounding in the file: symmetrized silently.
POLARIZABILITY_ROUNDING = 1e-8


@dataclass(frozen=True)
class Where:
    """Where a structure comes from (file and index), to locate error messages."""

    path: str | None
    index: int | None = None

    def error(self, message: str, field: str | None = None) -> InputError:
        return InputError(message, path=self.path, index=self.index, field=field)

    @property
    def source(self) -> str:
        """``"file:index"``, the Record.source of this structure."""
        return f"{self.path}:{self.index}"


# --- raw values -> Record shapes ------------------------------------------------------------


def _as_float_array(value, where: Where, field: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise where.error(f"expected numbers, got {_short(value)}", field) from None
    check_finite(array, where, field)
    return array


def as_energy(value, where: Where, field: str = ENERGY) -> float:
    """One number (eV after conversion) from a scalar or a one-element array."""
    array = _as_float_array(value, where, field)
    if array.size != 1:
        raise where.error(f"expected one number, got {array.size}", field)
    return float(array.reshape(()))


def as_forces(value, n_atoms: int, where: Where, field: str = FORCES) -> np.ndarray:
    """(n_atoms, 3) array from anything with n_atoms * 3 numbers laid out as rows."""
    array = _as_float_array(value, where, field)
    if array.shape != (n_atoms, 3):
        raise where.error(f"expected shape ({n_atoms}, 3) for {n_atoms} atoms, "
                          f"got {array.shape}", field)
    return array


def as_polarizability(value, where: Where, field: str = POLARIZABILITY) -> np.ndarray:
    """(3, 3) array from 9 numbers (row-major) or a 3x3 nested list."""
    array = _as_float_array(value, where, field)
    if array.size != 9 or array.shape not in ((9,), (3, 3), (1, 9)):
        raise where.error(f"expected 9 numbers (3x3, row-major), got shape {array.shape}",
                          field)
    return array.reshape(3, 3)


def as_dipole(value, where: Where, field: str = DIPOLE) -> np.ndarray:
    """(3,) array."""
    array = _as_float_array(value, where, field)
    if array.size != 3:
        raise where.error(f"expected 3 numbers, got shape {array.shape}", field)
    return array.reshape(3)


# --- whole records ---------------------------------------------------------------------------


def check_finite(array, where: Where, field: str) -> None:
    """InputError if ``array`` holds a NaN or an infinity."""
    array = np.asarray(array)
    if not np.all(np.isfinite(array)):
        bad = "NaN" if np.any(np.isnan(array)) else "infinite value"
        raise where.error(f"{bad} in {field}", field)


def check_record(record: Record, where: Where, min_distance: float = MIN_DISTANCE) -> None:
    """Raise InputError for the first problem found in ``record`` (internal units)."""
    if record.n_atoms == 0:
        raise where.error("empty structure (no atoms)", "numbers")
    check_atomic_numbers(record.numbers, where)
    if np.shape(record.positions) != (record.n_atoms, 3):
        raise where.error(f"expected shape ({record.n_atoms}, 3), "
                          f"got {np.shape(record.positions)}", "positions")
    check_finite(record.positions, where, "positions")
    check_spread(record, where)
    check_cell(record, where)
    for label in (ENERGY, FORCES, POLARIZABILITY, DIPOLE):
        value = getattr(record, label)
        if value is not None:
            check_finite(value, where, label)
    if record.forces is not None and np.shape(record.forces) != (record.n_atoms, 3):
        raise where.error(f"expected shape ({record.n_atoms}, 3), "
                          f"got {np.shape(record.forces)}", FORCES)
    if record.polarizability is not None:
        check_polarizability_symmetry(record.polarizability, where)
    for name, value in {**record.extra, **record.atom_extra}.items():
        check_finite(value, where, name)
    check_distances(record, where, min_distance)


def check_atomic_numbers(numbers: np.ndarray, where: Where) -> None:
    """Atomic numbers must be 1..118 (ASE reads an unknown 'X' as 0)."""
    bad = np.flatnonzero((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER))
    if bad.size:
        raise where.error(f"atom {int(bad[0])} has atomic number {int(numbers[bad[0]])}, "
                          f"not a known element (1..{MAX_ATOMIC_NUMBER})", "numbers")


def check_spread(record: Record, where: Where) -> None:
    """A molecule (no periodic direction) must fit in MAX_MOLECULE_SPREAD Angstrom."""
    if record.is_periodic or record.n_atoms < 2:
        return
    centre = np.median(record.positions, axis=0)
    distances = np.linalg.norm(record.positions - centre, axis=1)
    far = int(np.argmax(distances))
    if np.ptp(record.positions, axis=0).max() > MAX_MOLECULE_SPREAD:
        raise where.error(f"atom {far} is {distances[far]:.3g} Angstrom from the others "
                          f"(a molecule wider than {MAX_MOLECULE_SPREAD:g} Angstrom: "
                          "coordinates in the wrong unit, or a typing mistake?)", "positions")


def check_cell(record: Record, where: Where) -> None:
    """A periodic structure needs a finite cell with |det| >= MIN_CELL_VOLUME."""
    if not record.is_periodic:
        return
    if record.cell is None:
        raise where.error("periodic structure without a cell", "cell")
    check_finite(record.cell, where, "cell")
    volume = abs(float(np.linalg.det(record.cell)))
    if volume < MIN_CELL_VOLUME:
        raise where.error(f"singular cell (|det| = {volume:.3g} Angstrom^3) "
                          "in a periodic structure", "cell")


def polarizability_asymmetry(alpha: np.ndarray) -> float:
    """||a - a^T|| / ||a|| (Frobenius norms); 0 for a zero tensor."""
    norm = float(np.linalg.norm(alpha))
    return float(np.linalg.norm(alpha - alpha.T)) / norm if norm > 0 else 0.0


def check_polarizability_symmetry(alpha: np.ndarray, where: Where) -> None:
    asymmetry = polarizability_asymmetry(alpha)
    if asymmetry > POLARIZABILITY_ASYMMETRY:
        raise where.error(f"not symmetric: ||a - a^T|| / ||a|| = {asymmetry:.3g} "
                          f"> {POLARIZABILITY_ASYMMETRY:g}", POLARIZABILITY)


def check_distances(record: Record, where: Where, min_distance: float = MIN_DISTANCE) -> None:
    """No two atoms (periodic images included) closer than ``min_distance`` Angstrom."""
    centers, neighbors, shifts, distances = _short_pairs(record, min_distance)
    close = np.flatnonzero(distances < min_distance)
    if close.size == 0:
        return
    first = close[0]
    i, j, shift = int(centers[first]), int(neighbors[first]), shifts[first]
    if i == j:
        message = f"atom {i} is {distances[first]:.3g} Angstrom from its own periodic image"
    else:
        image = f" (periodic image {shift.tolist()})" if np.any(shift) else ""
        message = f"atoms {i} and {j}{image} are {distances[first]:.3g} Angstrom apart"
    raise where.error(f"{message}, closer than {min_distance:g} Angstrom", "positions")


def _short_pairs(record: Record, min_distance: float):
    """(centers, neighbors, shifts (E, 3), distances) of pairs including all closer than
    ``min_distance``, possibly more."""
    positions = record.positions
    if not record.is_periodic and record.n_atoms <= _ALL_PAIRS_ATOMS:
        # Small molecules: all pairs in numpy beat building a neighbour-list grid.
        distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        centers, neighbors = np.nonzero(distances < min_distance)
        return centers, neighbors, np.zeros((len(centers), 3), dtype=int), \
            distances[centers, neighbors]
    # vesin's grid has cells of the cutoff's size: a 0.1 Angstrom cutoff makes a huge
    # grid (slow), so search a little wider and filter the distances afterwards.
    pairs = neighbor_list(positions, max(min_distance, _SEARCH_RADIUS), record.cell, record.pbc)
    offsets = pairs.shifts @ record.cell if record.cell is not None \
        else np.zeros((len(pairs.centers), 3))
    vectors = positions[pairs.neighbors] - positions[pairs.centers] + offsets
    return pairs.centers, pairs.neighbors, pairs.shifts, np.linalg.norm(vectors, axis=1)


def symmetrize_polarizabilities(records: Sequence[Record], path: str | None) -> int:
    """Replace each polarizability by (a + a^T) / 2; warn once if any was visibly asymmetric.

    Call after ``check_record`` (which rejects tensors beyond POLARIZABILITY_ASYMMETRY).
    Returns how many structures had an asymmetry above rounding.
    """
    count, worst = 0, 0.0
    for record in records:
        alpha = record.polarizability
        if alpha is None:
            continue
        asymmetry = polarizability_asymmetry(alpha)
        if asymmetry > POLARIZABILITY_ROUNDING:
            count, worst = count + 1, max(worst, asymmetry)
        record.polarizability = 0.5 * (alpha + alpha.T)
    if count:
        logger.warning("%s: symmetrized the polarizability of %d of %d structures "
                       "(largest ||a - a^T|| / ||a|| = %.2g)", path, count, len(records), worst)
    return count


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
