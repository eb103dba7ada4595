"""The core repulsion prior: zero wherever training went, a smooth wall where it did not."""

from dataclasses import replace

import pytest
import torch

from tests.physics.helpers import (dimer, ethanol, finite_difference_forces, perturbed_model,
                                   predict, record_from_atoms, water_box_atoms)
from tests.physics.test_stress import finite_difference_stress, model_stress
from tridft.data.batch import collate
from tridft.data.domain import Domain
from tridft.model.persistence import (load_model, model_from_dict, model_to_dict, save_model,
                                      with_core_repulsion)
from tridft.model.repulsion import CoreRepulsion


def squeezed(record, factor: float):
    """``record`` with every position (and the cell) scaled by ``factor`` about the centre."""
    centre = record.positions.mean(axis=0)
    cell = None if record.cell is None else record.cell * factor
    return replace(record, positions=centre + factor * (record.positions - centre), cell=cell)


def trained_onsets_model(records, **overrides):
    """A perturbed model whose repulsion starts at the shortest distances of ``records``,
    as training sets it."""
    model = perturbed_model(seed=3, **overrides)
    domain = Domain.from_records(records, model.cutoff)
    model.repulsion.set_onsets(torch.from_numpy(domain.shortest_table()))
    return model


def without_repulsion(model):
    clone = model_from_dict(model_to_dict(model))
    clone.repulsion = None
    return clone.eval()


@pytest.fixture(scope="module")
def training_set():
    return [ethanol(0), ethanol(1), record_from_atoms(water_box_atoms())]


def test_the_prior_is_zero_on_every_training_structure(training_set):
    model = trained_onsets_model(training_set)
    plain = without_repulsion(model)
    for record in training_set:
        with_prior, without = predict(model, [record]), predict(plain, [record])
        for key in ("energy", "forces", "conservative_forces"):
            assert torch.equal(with_prior[key], without[key]), key


def test_closer_than_in_training_the_energy_rises_steeply(training_set):
    model = trained_onsets_model(training_set)
    plain = without_repulsion(model)
    extra = []
    for factor in (0.95, 0.85, 0.75, 0.65):
        record = squeezed(ethanol(0), factor)
        extra.append(float(predict(model, [record])["energy"][0]
                           - predict(plain, [record])["energy"][0]))
    assert extra[0] > 0
    assert all(later > 2 * earlier for earlier, later in zip(extra, extra[1:])), extra
    assert extra[-1] > 5.0  # eV: bonds at 65 % of their length are a wall


def test_a_dimer_inside_the_onset_is_pushed_apart_and_smooth_at_the_onset():
    repulsion = CoreRepulsion().double()
    repulsion.set_onsets(torch.full((119, 119), 1.0))
    energies, forces = [], []
    for distance in (0.5, 0.8, 0.99, 1.0 - 1e-6, 1.0, 1.2):
        batch = collate([dimer(distance, numbers=(1, 1))], 5.0, dtype=torch.float64)
        energy, force = repulsion(batch)
        energies.append(float(energy[0]))
        forces.append(force)
    assert energies[0] > energies[1] > energies[2] > 0
    assert energies[3] < 1e-20 and energies[4] == energies[5] == 0.0
    # Along the bond (from the first atom to the second): pushed apart.
    axis = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3.0
    assert float(forces[1][0] @ axis) < 0 < float(forces[1][1] @ axis)
    assert float(forces[1].sum(dim=0).abs().max()) < 1e-12  # Newton's third law


@pytest.mark.parametrize("name", ["ethanol", "water_box"])
def test_direct_and_conservative_forces_both_carry_the_same_wall(training_set, name):
    """The analytic forces added to the direct head are -dE_rep/dR exactly: the two force
    estimates differ by the learned parts only, as without the prior."""
    model = trained_onsets_model(training_set)
    plain = without_repulsion(model)
    record = squeezed(ethanol(2) if name == "ethanol" else
                      record_from_atoms(water_box_atoms(seed=4)), 0.8)
    prior = {key: predict(model, [record])[key] - predict(plain, [record])[key]
             for key in ("forces", "conservative_forces")}
    assert float(prior["forces"].abs().max()) > 0.1  # eV/A: the wall is there
    torch.testing.assert_close(prior["forces"], prior["conservative_forces"],
                               rtol=1e-9, atol=1e-9)
    fd = finite_difference_forces(model, record, step=1e-5)
    torch.testing.assert_close(predict(model, [record])["conservative_forces"], fd,
                               rtol=1e-6, atol=1e-6)


def test_stress_of_a_squeezed_cell_includes_the_wall(training_set):
    model = trained_onsets_model(training_set)
    record = squeezed(record_from_atoms(water_box_atoms(seed=4)), 0.8)
    stress = model_stress(model, [record])[0]
    plain = model_stress(without_repulsion(model), [record])[0]
    assert float((stress - plain).abs().max()) > 1e-3  # eV/A^3
    torch.testing.assert_close(stress, finite_difference_stress(model, record, step=1e-5),
                               rtol=1e-6, atol=1e-7)


def test_onsets_are_saved_with_the_model_and_old_files_have_no_prior(tmp_path, training_set):
    model = trained_onsets_model(training_set)
    path = tmp_path / "model.pt"
    save_model(model, path)
    loaded = load_model(path)
    assert torch.equal(loaded.repulsion.onsets, model.repulsion.onsets)
    record = squeezed(ethanol(0), 0.8)
    assert torch.equal(predict(loaded, [record])["energy"], predict(model, [record])["energy"])
    # A model file written before the prior existed: no core_repulsion in its config.
    payload = model_to_dict(without_repulsion(model))
    del payload["config"]["core_repulsion"]
    payload["state_dict"].pop("repulsion.onsets", None)
    assert model_from_dict(payload).repulsion is None


def test_a_model_saved_without_the_prior_gains_it_from_its_training_domain(training_set):
    model = without_repulsion(trained_onsets_model(training_set))
    model.metadata = {"domain": Domain.from_records(training_set, model.cutoff).to_dict()}
    upgraded = with_core_repulsion(model)
    for record in training_set:  # unchanged where training went
        assert torch.equal(predict(upgraded, [record])["energy"],
                           predict(model, [record])["energy"])
    record = squeezed(ethanol(0), 0.8)
    assert float(predict(upgraded, [record])["energy"][0]
                 - predict(model, [record])["energy"][0]) > 0.1
    assert torch.equal(upgraded.repulsion.onsets,
                       trained_onsets_model(training_set).repulsion.onsets)
