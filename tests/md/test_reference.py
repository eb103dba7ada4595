"""Valence springs fitted to the model: the fast force of multiple time stepping."""

import numpy as np
import pytest

from tridft.md.reference import (OWN_CONSTANTS, SAMPLES_PER_KIND, ValenceSprings,
                                 stretch_constants)
from tridft.spectra.harmonic import model_hessian
from tests.md.helpers import ethanol_atoms, perturbed_model
from tests.physics.helpers import water_box_atoms


@pytest.fixture(scope="module")
def model():
    return perturbed_model(seed=1)


def finite_difference_forces(stretches: ValenceSprings, positions: np.ndarray,
                             h: float = 1e-5) -> np.ndarray:
    forces = np.zeros_like(positions)
    for atom, axis in np.ndindex(*positions.shape):
        step = np.zeros_like(positions)
        step[atom, axis] = h
        forces[atom, axis] = -(stretches.energy(positions + step)
                               - stretches.energy(positions - step)) / (2 * h)
    return forces


def test_ethanol_has_springs_on_its_8_bonds_and_13_angles_with_the_models_constants(model):
    atoms = ethanol_atoms()
    springs = ValenceSprings.from_model(model, atoms)
    symbols = atoms.get_chemical_symbols()
    pairs = sorted("".join(sorted(symbols[k] for k in pair))
                   for pair in zip(springs.first, springs.second))
    bonds = ["CC", "CO", "CH", "CH", "CH", "CH", "CH", "HO"]
    # Angles: H-C-H 3+1, H-C-C 3+2, C-C-O, H-C-O 2, C-O-H: their two ends.
    angles = ["HH"] * 4 + ["CH"] * 5 + ["CO"] + ["HO"] * 2 + ["CH"]
    assert pairs == sorted(bonds + angles)
    assert sorted(springs.anharmonicity) == [1.0] * 13 + [1.9] * 8
    # k = -u^T H_ij u from the full autograd Hessian, pair by pair.
    hessian = model_hessian(model, atoms)
    for p, (i, j) in enumerate(zip(springs.first, springs.second)):
        u = atoms.positions[j] - atoms.positions[i]
        u /= np.linalg.norm(u)
        expected = -u @ hessian[3 * i:3 * i + 3, 3 * j:3 * j + 3] @ u
        assert springs.constants[p] == pytest.approx(max(expected, 0.0), rel=1e-6, abs=1e-9)
    # At the starting geometry every spring is at rest.
    assert np.abs(springs.forces(atoms.positions)).max() == 0.0
    assert springs.energy(atoms.positions) == 0.0


def test_spring_forces_are_minus_the_gradient_of_the_spring_energy():
    atoms = ethanol_atoms()
    n = len(atoms)
    rng = np.random.default_rng(0)
    first, second = np.array([0, 0, 1, 2]), np.array([1, 3, 4, 8])
    lengths = np.linalg.norm(atoms.positions[second] - atoms.positions[first], axis=1)
    stretches = ValenceSprings(first, second, np.zeros((4, 3)), lengths,
                               rng.uniform(5, 40, size=4), rng.uniform(0.5, 2.5, size=4), n)
    moved = atoms.positions + rng.normal(scale=0.05, size=(n, 3))
    np.testing.assert_allclose(stretches.forces(moved), finite_difference_forces(stretches, moved),
                               atol=1e-6)
    np.testing.assert_allclose(stretches.forces(moved).sum(axis=0), 0.0, atol=1e-12)


def test_bonds_across_the_cell_boundary_use_the_right_image(model):
    atoms = water_box_atoms(per_side=2)
    atoms.positions += np.array([1.2, 0.0, 0.0])  # some O-H bonds now cross the boundary
    atoms.wrap()
    springs = ValenceSprings.from_model(model, atoms)
    assert len(springs) == 24  # per water: two O-H bonds and the H...H of its angle
    assert np.abs(springs.offsets).max() > 1.0  # at least one through an image
    bonds = springs.anharmonicity > 1.5
    np.testing.assert_allclose(springs.lengths[bonds], 0.97, atol=0.03)
    np.testing.assert_allclose(springs.lengths[~bonds], 1.53, atol=0.05)
    rng = np.random.default_rng(1)
    moved = atoms.positions + rng.normal(scale=0.03, size=atoms.positions.shape)
    np.testing.assert_allclose(springs.forces(moved), finite_difference_forces(springs, moved),
                               atol=1e-6)


def test_a_large_structure_shares_one_constant_per_kind_of_pair(model):
    atoms = water_box_atoms(per_side=3)  # 27 waters: 81 springs, more than OWN_CONSTANTS
    springs = ValenceSprings.from_model(model, atoms)
    assert len(springs) == 81 > OWN_CONSTANTS
    bonds = springs.anharmonicity == 1.9
    assert len(set(springs.constants[bonds])) == 1
    assert len(set(springs.constants[~bonds])) == 1
    # The shared bond constant is the mean of the first SAMPLES_PER_KIND bonds' own.
    sample = slice(0, SAMPLES_PER_KIND)
    first, second = springs.first[bonds][sample], springs.second[bonds][sample]
    vectors = atoms.positions[second] + springs.offsets[bonds][sample] - atoms.positions[first]
    own = stretch_constants(model, atoms, first, second,
                            vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    assert springs.constants[bonds][0] == pytest.approx(max(own.mean(), 0.0), rel=1e-9)
