"""TriDFTCalculator: the model's numbers through ASE, for molecules and periodic cells."""

import numpy as np
import pytest
import torch

from tridft.data.batch import collate
from tridft.errors import InputError
from tridft.md.calculator import TriDFTCalculator, atoms_to_geometry
from tridft.model.extra_heads import DipoleHead
from tridft.model.model import build_model
from tridft.model.persistence import save_model
from tests.md.helpers import ethanol_atoms, perturbed_model
from tests.physics.helpers import random_orthogonal, water_box_atoms


@pytest.fixture(scope="module")
def model():
    model = perturbed_model(seed=3)
    # Freshly initialised vector channels are small, which leaves the polarizability
    # almost isotropic; amplify them so that its rotation is a real test.
    with torch.no_grad():
        model.heads["polarizability"].block.mix_out.weight.mul_(30.0)
    return model


def test_results_equal_a_direct_model_call(model):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model)
    batch = collate([atoms_to_geometry(atoms)], model.cutoff, dtype=torch.float64)
    expected = model(batch, forces="both")
    assert atoms.get_potential_energy() == pytest.approx(float(expected["energy"][0].detach()),
                                                           abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), expected["forces"].detach().numpy(),
                               atol=1e-10)
    np.testing.assert_allclose(atoms.calc.get_property("polarizability", atoms),
                               expected["polarizability"][0].detach().numpy(), atol=1e-10)
    assert atoms.calc.results["polarizability"].shape == (3, 3)

    atoms.calc = TriDFTCalculator(model, forces="conservative")
    np.testing.assert_allclose(atoms.get_forces(),
                               expected["conservative_forces"].detach().numpy(), atol=1e-10)


def test_a_saved_model_loads_from_its_path(model, tmp_path):
    save_model(model, tmp_path / "model.pt")
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model)
    from_object = atoms.get_potential_energy()
    atoms.calc = TriDFTCalculator(tmp_path / "model.pt")
    assert atoms.get_potential_energy() == pytest.approx(from_object, abs=1e-10)


def test_conservative_forces_are_minus_the_gradient_of_the_calculator_energy(model):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model, forces="conservative")
    forces = atoms.get_forces()
    delta = 1e-4
    numerical = np.zeros_like(forces)
    for atom in range(len(atoms)):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.calc = atoms.calc
                displaced.positions[atom, axis] += sign * delta
                energies.append(displaced.get_potential_energy())
            numerical[atom, axis] = -(energies[0] - energies[1]) / (2 * delta)
    np.testing.assert_allclose(forces, numerical, atol=1e-7 * max(1.0, np.abs(forces).max()))


def test_polarizability_rotates_with_the_molecule(model):
    rotation = random_orthogonal(np.random.default_rng(4))
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model)
    alpha = atoms.calc.get_property("polarizability", atoms)
    forces = atoms.get_forces()
    turned = atoms.copy()
    turned.positions = atoms.positions @ rotation.T
    turned.calc = TriDFTCalculator(model)
    np.testing.assert_allclose(turned.calc.get_property("polarizability", turned),
                               rotation @ alpha @ rotation.T, atol=1e-9)
    np.testing.assert_allclose(turned.get_forces(), forces @ rotation.T, atol=1e-9)
    # Guard against a vacuous check: the anisotropy is far above the tolerance, so an
    # unrotated tensor would fail.
    assert np.abs(rotation @ alpha @ rotation.T - alpha).max() > 1e-4


def test_a_2x2x2_repeat_of_a_periodic_cell_has_8_times_the_energy(model):
    cell = water_box_atoms(per_side=2)  # 6.2 Angstrom: atoms see several images
    cell.calc = TriDFTCalculator(model)
    repeat = cell.repeat((2, 2, 2))
    repeat.calc = TriDFTCalculator(model)
    assert repeat.get_potential_energy() == pytest.approx(8 * cell.get_potential_energy(),
                                                         rel=1e-10)
    np.testing.assert_allclose(repeat.calc.results["polarizability"],
                               8 * cell.calc.results["polarizability"], rtol=1e-10)
    np.testing.assert_allclose(repeat.get_forces().reshape(8, len(cell), 3),
                               np.broadcast_to(cell.get_forces(), (8, len(cell), 3)), atol=1e-9)
    # The cell is really periodic: the same atoms without pbc give another energy.
    molecule = cell.copy()
    molecule.pbc = False
    molecule.calc = TriDFTCalculator(model)
    assert abs(molecule.get_potential_energy() - cell.get_potential_energy()) > 1e-4


def test_an_element_the_model_was_not_trained_on_is_a_clear_error(model):
    model.elements = [1, 6, 8]
    try:
        atoms = ethanol_atoms()
        atoms.numbers[2] = 7  # the oxygen becomes a nitrogen
        atoms.calc = TriDFTCalculator(model)
        with pytest.raises(InputError, match=r"element N \(Z=7\) is unknown to the model, "
                                              r"which was trained on H, C, O"):
            atoms.get_potential_energy()
        atoms.numbers[2] = 8
        atoms.get_potential_energy()  # known elements are fine
    finally:
        model.elements = []


def test_the_neighbour_list_is_reused_for_small_moves_and_rebuilt_for_large_ones(model):
    atoms = ethanol_atoms()
    calculator = TriDFTCalculator(model, forces="conservative", skin=0.5)
    atoms.calc = calculator
    atoms.get_potential_energy()
    rng = np.random.default_rng(0)
    for _ in range(5):  # each atom moves at most 0.1 Angstrom from the first geometry
        moved = ethanol_atoms()
        moved.positions += rng.uniform(-0.05, 0.05, size=(len(moved), 3))
        atoms.positions = moved.positions
        reused = (atoms.get_potential_energy(), atoms.get_forces(),
                  calculator.results["polarizability"])
        moved.calc = TriDFTCalculator(model, forces="conservative", skin=0.0)
        fresh = (moved.get_potential_energy(), moved.get_forces(),
                 moved.calc.results["polarizability"])
        assert reused[0] == pytest.approx(fresh[0], abs=1e-10)
        np.testing.assert_allclose(reused[1], fresh[1], atol=1e-10)
        np.testing.assert_allclose(reused[2], fresh[2], atol=1e-10)
    assert calculator.neighbors.rebuilds == 1

    atoms.positions[0] += [0.3, 0.0, 0.0]  # more than skin / 2
    atoms.get_potential_energy()
    assert calculator.neighbors.rebuilds == 2
    atoms.set_cell(np.eye(3) * 20.0)  # a molecule's cell is ignored: no rebuild
    atoms.get_potential_energy()
    assert calculator.neighbors.rebuilds == 2
    atoms.pbc = True  # becoming periodic changes the geometry
    atoms.get_potential_energy()
    assert calculator.neighbors.rebuilds == 3


def test_the_skin_list_is_exact_when_a_pair_crosses_the_cutoff(model):
    """Two atoms moving across the cutoff: reused and rebuilt lists agree on both sides."""
    from ase import Atoms

    calculator = TriDFTCalculator(model, forces="conservative", skin=1.0)
    for distance in (model.cutoff - 0.2, model.cutoff + 0.2, model.cutoff - 0.1):
        atoms = Atoms("OH", positions=[[0, 0, 0], [distance, 0, 0]])
        atoms.calc = calculator
        reused = atoms.get_forces()
        atoms.calc = TriDFTCalculator(model, forces="conservative", skin=0.0)
        np.testing.assert_allclose(reused, atoms.get_forces(), atol=1e-12)
    assert calculator.neighbors.rebuilds == 1


def test_extra_structure_heads_appear_under_their_names():
    model = perturbed_model(seed=4)
    config = model.config
    model.add_head(DipoleHead("dipole", config.latent_scalar_width, config.latent_vector_width,
                              config.head_hidden).to(torch.float64))
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model)
    assert "dipole" in atoms.calc.implemented_properties
    dipole = atoms.calc.get_property("dipole", atoms)
    assert dipole.shape == (3,)
    assert atoms.get_dipole_moment().shape == (3,)  # ASE's own accessor reads it too
    assert "dipole" not in atoms.calc.per_atom_properties


def test_bad_arguments_are_clear_errors(model):
    with pytest.raises(InputError, match="forces must be one of"):
        TriDFTCalculator(model, forces="magic")
    with pytest.raises(InputError, match="expected a TriDFTModel"):
        TriDFTCalculator(42)


def test_a_dtype_conversion_works_on_a_copy(model):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model, dtype=torch.float32)
    single = atoms.get_potential_energy()
    assert next(model.parameters()).dtype == torch.float64  # the caller's model is untouched
    atoms.calc = TriDFTCalculator(model)
    assert single == pytest.approx(atoms.get_potential_energy(), rel=1e-5)
    assert atoms.calc.model is model  # no conversion needed: no copy


def test_float32_energies_have_finite_differences_equal_to_the_forces():
    """Realistic totals (-4209 eV for ethanol) must not quantise a float32 model's energy:
    central differences (h = 1e-3 A) of the calculator's energy equal its -dE/dR."""
    from tridft.data.stats import DatasetStats

    stats = DatasetStats(reference_energies={1: -13.6, 6: -1029.0, 8: -2040.0},
                         energy_per_atom_scale=1.2, forces_rms=1.2)
    torch.manual_seed(0)
    model = build_model({"features": 16, "layers": 2}, stats).eval()
    assert next(model.parameters()).dtype == torch.float32
    atoms = ethanol_atoms()
    atoms.positions += 7.0  # a molecule away from the origin, as in a box
    atoms.calc = TriDFTCalculator(model, forces="conservative")
    assert atoms.get_potential_energy() < -4000
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 0.05  # a test with forces to compare
    h, worst = 1e-3, 0.0
    for atom in range(len(atoms)):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.positions[atom, axis] += sign * h
                displaced.calc = atoms.calc
                energies.append(displaced.get_potential_energy())
            worst = max(worst, abs(-(energies[0] - energies[1]) / (2 * h) - forces[atom, axis]))
    assert worst < 2e-3
