"""Translations, lattice-vector shifts and permutations of atoms change nothing physical."""

import numpy as np
import pytest
import torch
from dataclasses import replace

from tests.physics.helpers import (BACKBONES, OUTPUT_KEYS, assert_close, assert_nontrivial, ethanol,
                                   perturbed_model, permuted, predict, silicon, transformed,
                                   water_box)

TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=4, **BACKBONES[request.param])


@pytest.mark.parametrize("structure", [ethanol, water_box, silicon],
                         ids=["ethanol", "water_box", "silicon"])
def test_translation_changes_no_output(model, structure):
    record = structure()
    before = predict(model, [record])
    after = predict(model, [transformed(record, translation=np.array([7.3, -2.1, 40.0]))])
    assert_nontrivial(before)
    for key in OUTPUT_KEYS:
        assert_close(after[key], before[key], TOLERANCE, key)


def test_moving_atoms_by_lattice_vectors_changes_no_output(model):
    """Wrapping into the cell (or out of it) is a relabelling of images, not a new structure."""
    record = water_box()
    rng = np.random.default_rng(0)
    jumps = rng.integers(-2, 3, size=(record.n_atoms, 3)) @ record.cell  # (n, 3) Angstrom
    before = predict(model, [record])
    after = predict(model, [replace(record, positions=record.positions + jumps)])
    for key in OUTPUT_KEYS:
        assert_close(after[key], before[key], TOLERANCE, key)


@pytest.mark.parametrize("structure", [ethanol, water_box], ids=["ethanol", "water_box"])
def test_permuting_atoms_permutes_forces_only(model, structure):
    record = structure()
    order = np.random.default_rng(1).permutation(record.n_atoms)
    assert not np.array_equal(order, np.arange(record.n_atoms))
    before = predict(model, [record])
    after = predict(model, [permuted(record, order)])
    assert_nontrivial(before)
    assert_close(after["energy"], before["energy"], TOLERANCE, "energy")
    assert_close(after["polarizability"], before["polarizability"], TOLERANCE, "polarizability")
    index = torch.as_tensor(order)
    for key in ("forces", "conservative_forces"):
        assert_close(after[key], before[key][index], TOLERANCE, key)
