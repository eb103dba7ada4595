"""A model with a dipole head (every model trained on data with dipoles) still runs on
periodic cells: the dipole, undefined there, is left out; molecules keep it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.calculators.calculator import PropertyNotImplementedError

from tests.physics.helpers import (ethanol, perturbed_model, predict, water_box,
                                   water_box_atoms)
from tridft import TriDFTCalculator
from tridft.errors import InputError
from tridft.model.extra_heads import DipoleHead
from tridft.data.batch import collate


@pytest.fixture(scope="module")
def model():
    model = perturbed_model(seed=5)
    c = model.config
    model.add_head(DipoleHead("dipole", c.latent_scalar_width, c.latent_vector_width,
                              c.head_hidden).to(torch.float64))
    return model.eval()


def test_the_dipole_is_left_out_of_periodic_batches_only(model):
    molecule = predict(model, [ethanol(0)])
    cell = predict(model, [water_box()])
    assert molecule["dipole"].shape == (1, 3)
    assert "dipole" not in cell and {"energy", "forces", "polarizability"} <= set(cell)
    # The head itself still refuses a periodic structure, naming it.
    batch = collate([water_box()], model.cutoff, dtype=torch.float64)
    with pytest.raises(InputError, match="ill-defined for periodic cells"):
        model.heads["dipole"](model.latent(batch), batch)


@pytest.mark.parametrize("traced", [True, False])
def test_the_calculator_gives_a_cell_everything_but_the_dipole(model, traced):
    atoms = water_box_atoms()
    atoms.calc = TriDFTCalculator(model, traced=traced)
    assert np.isfinite(atoms.get_potential_energy())
    assert atoms.get_forces().shape == (len(atoms), 3)
    assert atoms.get_stress().shape == (6,)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_dipole_moment()
