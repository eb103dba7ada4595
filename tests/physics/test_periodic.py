"""Periodic cells: a supercell is the same crystal, so it has N times the extensive outputs."""

import numpy as np
import pytest
import torch

from tests.physics.helpers import (BACKBONES, assert_close, perturbed_model, predict,
                                   record_from_atoms, rocksalt_atoms, silicon_atoms,
                                   water_box_atoms)

TOLERANCE = 1e-9
CELLS = {
    # Each cell is shorter than twice the 5 Angstrom cutoff: atoms see many images.
    "water_box_6.2A": water_box_atoms,
    "rocksalt_5.64A": rocksalt_atoms,
    "silicon_oblique_3.84A": silicon_atoms,
}


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=5, **BACKBONES[request.param])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_a_2x2x2_supercell_has_8_times_energy_and_polarizability(model, name):
    atoms = CELLS[name]()
    assert min(np.linalg.norm(atoms.cell.array, axis=1)) < 2 * model.cutoff
    supercell = atoms.repeat((2, 2, 2))  # ASE keeps the original atoms first, then each image
    cell_out = predict(model, [record_from_atoms(atoms)])
    super_out = predict(model, [record_from_atoms(supercell)])
    assert_close(super_out["energy"], 8 * cell_out["energy"], TOLERANCE, "energy")
    assert_close(super_out["polarizability"], 8 * cell_out["polarizability"], TOLERANCE,
                 "polarizability")
    # Every image of an atom feels the same force as the atom itself.
    for key in ("forces", "conservative_forces"):
        images = super_out[key].reshape(8, len(atoms), 3)
        assert_close(images, cell_out[key].expand(8, -1, -1), TOLERANCE, key)


def test_the_cell_size_matters_so_images_are_really_seen(model):
    """Guard against a vacuous supercell test: squeezing the cell must change the energy."""
    atoms = rocksalt_atoms()
    squeezed = atoms.copy()
    squeezed.set_cell(atoms.cell.array * 0.97, scale_atoms=True)
    energies = predict(model, [record_from_atoms(atoms), record_from_atoms(squeezed)],
                       forces="direct")["energy"]
    assert abs(float(energies[0] - energies[1])) > 1e-4
