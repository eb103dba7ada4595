"""Inputs checked before native code and before ASE: neighbour lists and atom counts."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tridft.data import neighbors
from tridft.data.io import read_structures
from tridft.data.neighbors import neighbor_list
from tridft.errors import InputError


def pairs(nl) -> set:
    return set(zip(nl.centers.tolist(), nl.neighbors.tolist(), map(tuple, nl.shifts.tolist())))


def test_a_molecule_with_an_atom_far_away_gets_its_neighbours_without_vesin():
    rng = np.random.default_rng(0)
    positions = np.vstack([rng.random((20, 3)) * 6, [[1e6, 0.0, 0.0], [1e6, 1.0, 0.0]]])
    result = neighbor_list(positions, 3.0)  # vesin dies of SIGFPE on this input
    near = neighbor_list(positions[:20], 3.0)
    assert pairs(result) == pairs(near) | {(20, 21, (0, 0, 0)), (21, 20, (0, 0, 0))}


def test_the_fallbacks_agree_with_vesin(monkeypatch):
    rng = np.random.default_rng(1)
    positions = rng.random((30, 3)) * 7
    cell = np.diag([7.0, 7.5, 8.0])
    expected_molecule = pairs(neighbor_list(positions, 3.5))
    expected_periodic = pairs(neighbor_list(positions, 3.5, cell, [True, True, False]))
    monkeypatch.setattr(neighbors, "MAX_GRID_CELLS", 0.5)  # force the fallbacks
    assert pairs(neighbor_list(positions, 3.5)) == expected_molecule
    assert pairs(neighbor_list(positions, 3.5, cell, [True, True, False])) == expected_periodic


@pytest.mark.parametrize("positions, cutoff, cell, message", [
    (np.array([[0.0, 0, 0], [np.nan, 0, 0]]), 5.0, None, "NaN"),
    (np.zeros((2, 2)), 5.0, None, "shape"),
    (np.array([[0.0, 0, 0], [1.0, 0, 0]]), -1.0, None, "cutoff"),
    (np.array([[0.0, 0, 0], [1.0, 0, 0]]), 5.0, np.diag([1.0, 1.0, 0.0]), "singular"),
    (np.random.default_rng(0).random((400, 3)), 5.0, np.diag([0.01, 0.01, 0.01]), "too small"),
])
def test_bad_inputs_are_input_errors_not_crashes(positions, cutoff, cell, message):
    with pytest.raises(InputError, match=message):
        neighbor_list(positions, cutoff, cell, None if cell is None else [True] * 3)


def test_a_huge_atom_count_is_an_error_at_once(tmp_path):
    path = tmp_path / "huge.extxyz"
    path.write_text("999999999\nProperties=species:S:1:pos:R:3\nH 0 0 0\n")
    start = time.monotonic()
    with pytest.raises(InputError, match="claims 999999999 atoms"):
        read_structures(path)
    assert time.monotonic() - start < 2.0


def test_a_molecule_wider_than_anything_real_is_an_input_error(tmp_path):
    path = tmp_path / "far.xyz"
    path.write_text("2\n\nH 0 0 0\nH 1e6 0 0\n")
    with pytest.raises(InputError, match="wrong unit"):
        read_structures(path)
