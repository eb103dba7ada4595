"""Stress: (1/V) dE/d(strain) by autograd against finite differences of the energy.

The finite differences deform positions and cell, then recompute the neighbour list,
so they also check that nothing is missed when atoms move across the cutoff images.
"""

from dataclasses import replace

import ase
import numpy as np
import pytest
import torch

from tests.physics.helpers import (_ethanol_frames, assert_close, perturbed_model,
                                   random_orthogonal, record_from_atoms, rocksalt_atoms,
                                   transformed, water_box_atoms)
from tridft.data.batch import collate
from tridft.model.inference import run_model
from tridft.model.stress import cell_volumes, pressure

STRAIN_STEP = 1e-4


def ethanol_crystal() -> ase.Atoms:
    """Two ethanol molecules in a small triclinic cell: a molecular crystal whose cell
    (about 6-7 Angstrom) is shorter than twice the cutoff."""
    molecule = _ethanol_frames()[0].copy()
    molecule.positions -= molecule.positions.mean(axis=0)
    cell = np.array([[6.4, 0.0, 0.0], [0.9, 6.8, 0.0], [-0.6, 1.1, 7.2]])
    crystal = ase.Atoms(cell=cell, pbc=True)
    first = molecule.copy()
    first.positions += 0.25 * cell.sum(axis=0)
    second = molecule.copy()
    second.positions = -second.positions + 0.75 * cell.sum(axis=0)  # inversion partner
    return crystal + first + second


CELLS = {"water_box_2x2x2": water_box_atoms, "ethanol_crystal": ethanol_crystal,
         "rocksalt": rocksalt_atoms}


def model_stress(model, records, forces="direct"):
    dtype = next(model.parameters()).dtype
    outputs = run_model(model, collate(records, model.cutoff, dtype=dtype), forces=forces,
                        stress=True)
    return outputs["stress"]


def finite_difference_stress(model, record, step=STRAIN_STEP) -> torch.Tensor:
    """(3, 3) eV/A^3: (E(D+) - E(D-)) / (2 h V) for D = I +- h sym(e_a e_b^T)."""
    dtype = next(model.parameters()).dtype
    deformed = []
    for a in range(3):
        for b in range(3):
            for sign in (+1.0, -1.0):
                strain = np.zeros((3, 3))
                strain[a, b] += 0.5 * sign * step
                strain[b, a] += 0.5 * sign * step
                deformation = np.eye(3) + strain
                deformed.append(replace(record, positions=record.positions @ deformation.T,
                                        cell=record.cell @ deformation.T))
    with torch.no_grad():
        energies = model(collate(deformed, model.cutoff, dtype=dtype))["energy"]
    energies = energies.to(torch.float64).reshape(3, 3, 2)
    volume = abs(np.linalg.det(record.cell))
    return (energies[..., 0] - energies[..., 1]) / (2 * step * volume)


def steep_model(dtype: str):
    """A perturbed model with its learned energy scaled up 20 times, so stresses are
    1e-2 eV/A^3 (GPa), as in a trained model of compressed water, not 1e-4."""
    model = perturbed_model(seed=11, dtype=dtype)
    model.heads["energy"].scale.mul_(20.0)
    return model


@pytest.fixture(scope="module")
def model64():
    return steep_model("float64")


@pytest.fixture(scope="module")
def model32():
    return steep_model("float32")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_stress_matches_finite_differences_float64(model64, name):
    record = record_from_atoms(CELLS[name]())
    stress = model_stress(model64, [record])[0]
    assert float(stress.abs().max()) > 3e-3, "stress trivially small: the test is vacuous"
    assert_close(stress, finite_difference_stress(model64, record, step=1e-5), 1e-7, "stress")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_float32_stress_within_1e_4_of_finite_differences(model32, model64, name):
    """The float32 model's autograd stress against finite differences of its own energy
    and of the same weights in float64: within 1e-4 eV/A^3."""
    record = record_from_atoms(CELLS[name]())
    stress = model_stress(model32, [record])[0].to(torch.float64)
    assert float(stress.abs().max()) > 3e-3
    reference = finite_difference_stress(model32, record, step=1e-3)
    assert float((stress - reference).abs().max()) < 1e-4
    same_weights = model32.to(torch.float64)  # a float64 copy of the float32 weights
    exact = finite_difference_stress(same_weights, record, step=1e-5)
    model32.to(torch.float32)
    assert float((stress - exact).abs().max()) < 1e-4


def test_stress_is_symmetric_and_rotates_as_a_tensor(model64):
    record = record_from_atoms(ethanol_crystal())
    rng = np.random.default_rng(3)
    before = model_stress(model64, [record])[0]
    assert_close(before, before.T, 1e-12, "symmetry")
    for improper in (False, True):
        rotation = random_orthogonal(rng, improper=improper)
        after = model_stress(model64, [transformed(record, rotation, np.array([0.3, -1, 2]))])[0]
        R = torch.as_tensor(rotation)
        assert_close(after, R @ before @ R.T, 1e-9, "rotated stress")


def test_stress_is_intensive_and_batching_does_not_mix_structures(model64):
    atoms = water_box_atoms()
    cell, supercell = record_from_atoms(atoms), record_from_atoms(atoms.repeat((2, 1, 1)))
    stresses = model_stress(model64, [cell, supercell, record_from_atoms(ethanol_crystal())])
    assert_close(stresses[1], stresses[0], 1e-9, "supercell stress")
    alone = model_stress(model64, [record_from_atoms(ethanol_crystal())])[0]
    assert_close(stresses[2], alone, 1e-9, "batched stress")


def test_a_molecule_has_zero_stress_and_a_pressure_of_zero(model64):
    molecule = record_from_atoms(_ethanol_frames()[1])
    stress = model_stress(model64, [molecule, record_from_atoms(rocksalt_atoms())])
    assert torch.all(stress[0] == 0)
    assert float(stress[1].abs().max()) > 0
    assert float(pressure(stress)[0]) == 0.0
    batch = collate([molecule], model64.cutoff, dtype=torch.float64)
    assert float(cell_volumes(batch)[0]) == 0.0


def test_forces_from_the_stress_pass_are_the_conservative_forces(model64):
    record = record_from_atoms(water_box_atoms())
    batch = collate([record], model64.cutoff, dtype=torch.float64)
    with_stress = run_model(model64, batch, forces="conservative", stress=True)
    plain = model64(batch, forces="conservative")
    assert "forces" not in with_stress
    assert_close(with_stress["conservative_forces"], plain["conservative_forces"].detach(),
                 1e-10, "forces")
    assert_close(with_stress["energy"], plain["energy"].detach(), 1e-12, "energy")
