"""The vesin neighbour list against a brute-force loop over periodic images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tridft.data.neighbors import neighbor_list


def brute_force(positions, cutoff, cell, pbc):
    """{(i, j, shift): distance} for every image pair closer than ``cutoff`` (no self pair)."""
    # Images up to n_k cells away in direction k can be within the cutoff, where n_k is
    # the cutoff over the distance between lattice planes, plus one for positions
    # anywhere in (or outside) the cell.
    volume = abs(np.linalg.det(cell))
    reach = []
    for k in range(3):
        if not pbc[k]:
            reach.append(0)
            continue
        plane_distance = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
        reach.append(int(np.ceil(cutoff / plane_distance)) + 1)
    pairs = {}
    n = len(positions)
    for shift in itertools.product(*(range(-r, r + 1) for r in reach)):
        offset = np.array(shift) @ cell
        for i in range(n):
            for j in range(n):
                if i == j and not any(shift):
                    continue
                distance = np.linalg.norm(positions[j] - positions[i] + offset)
                if distance < cutoff:
                    pairs[(i, j, shift)] = distance
    return pairs


def vesin_pairs(positions, cutoff, cell, pbc):
    nl = neighbor_list(positions, cutoff, cell, pbc)
    pairs = {}
    for i, j, shift in zip(nl.centers.tolist(), nl.neighbors.tolist(), nl.shifts.tolist()):
        key = (i, j, tuple(shift))
        assert key not in pairs, f"edge {key} listed twice"
        pairs[key] = np.linalg.norm(positions[j] - positions[i] + np.array(shift) @ cell)
    return pairs


TRICLINIC = np.array([[4.2, 0.0, 0.0], [1.3, 3.9, 0.0], [-0.8, 1.1, 4.5]])
SMALL = np.array([[1.9, 0.0, 0.0], [0.6, 2.1, 0.0], [0.4, -0.5, 2.3]])  # < 2 x cutoff


@pytest.mark.parametrize("cell, n_atoms, cutoff, pbc", [
    (TRICLINIC, 6, 3.0, (True, True, True)),
    (SMALL, 3, 3.5, (True, True, True)),  # many images of each atom, and of itself
    (SMALL, 2, 3.0, (True, True, False)),  # a slab
])
def test_periodic_neighbor_list_matches_brute_force(cell, n_atoms, cutoff, pbc):
    rng = np.random.default_rng(n_atoms)
    # Some atoms outside the cell too: shifts must not assume wrapped positions.
    positions = rng.uniform(-0.3, 1.3, size=(n_atoms, 3)) @ cell
    expected = brute_force(positions, cutoff, cell, np.array(pbc))
    found = vesin_pairs(positions, cutoff, cell, np.array(pbc))
    assert sorted(found) == sorted(expected)
    assert np.allclose([found[k] for k in sorted(found)], [expected[k] for k in sorted(found)])
    if cell is SMALL and all(pbc):
        assert any(i == j for i, j, _ in found)  # the atom's own images are neighbours


def test_molecule_ignores_cell():
    positions = np.array([[0.0, 0, 0], [1.0, 0, 0], [2.5, 0, 0]])
    found = vesin_pairs(positions, 1.6, np.zeros((3, 3)), np.zeros(3, dtype=bool))
    assert sorted(found) == [(0, 1, (0, 0, 0)), (1, 0, (0, 0, 0)),
                             (1, 2, (0, 0, 0)), (2, 1, (0, 0, 0))]
