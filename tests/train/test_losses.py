"""Loss terms: masked by the labels present, normalised by the dataset scales."""

from __future__ import annotations

import copy

import pytest
import torch

from tridft.data.batch import collate
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.stats import compute_stats
from tridft.model.model import build_model
from tridft.train.config import LossConfig
from tridft.train.losses import LossTerm, build_objective, elementwise_loss, linear_warmup

from .tiny import TINY_MODEL


@pytest.fixture(scope="module")
def setting():
    """Three ethanol structures (the third without polarizability), stats and a float64 model."""
    records = read_structures(bundled_dataset_path())[:3]
    records[2] = copy.copy(records[2])
    records[2].polarizability = None
    stats = compute_stats(records[:2], cutoff=4.0)
    torch.manual_seed(0)
    model = build_model({**TINY_MODEL, "dtype": "float64"}, stats).eval()
    return records, stats, model


def outputs_and_batch(model, records, forces="both"):
    batch = collate(records, model.cutoff, dtype=torch.float64)
    return model(batch, forces=forces), batch


def value(tensor: torch.Tensor) -> float:
    return float(tensor.detach())


def test_structure_without_label_neither_adds_nor_dilutes(setting):
    records, stats, model = setting
    objective = build_objective(LossConfig(), stats)
    with_unlabelled = objective(*outputs_and_batch(model, records), step=0)
    labelled_only = objective(*outputs_and_batch(model, records[:2]), step=0)
    # The polarizability loss ignores the third structure entirely ...
    assert value(with_unlabelled.tasks["polarizability"]) == pytest.approx(
        value(labelled_only.tasks["polarizability"]), rel=1e-12)
    # ... while the energy loss, whose label it has, does change.
    assert value(with_unlabelled.tasks["energy"]) != pytest.approx(
        value(labelled_only.tasks["energy"]), rel=1e-6)


def test_batch_without_label_gives_exact_zero_that_keeps_the_graph(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records[2:], forces="direct")
    term = LossTerm("polarizability", scale=stats.polarizability_scale, per_atom=True)
    loss = term(outputs, batch)
    assert value(loss) == 0.0
    assert loss.requires_grad
    loss.backward()  # an empty term is part of the graph: backward works, gradients are zero
    gradients = [p.grad for p in model.heads["polarizability"].parameters() if p.grad is not None]
    assert gradients and all(float(g.abs().max()) == 0.0 for g in gradients)
    objective = build_objective(LossConfig(jacobian_weight=0.0), stats)
    outputs, batch = outputs_and_batch(model, records[2:])
    assert objective(outputs, batch, step=0).present == {
        "energy": True, "forces": True, "conservative_forces": True, "polarizability": False}


def test_terms_are_normalised_by_the_dataset_scales(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records)
    losses = build_objective(LossConfig(), stats)(outputs, batch, step=0).tasks
    n_atoms = batch.n_atoms.double()
    energy = (((outputs["energy"] - batch.energy) / n_atoms / stats.energy_per_atom_scale) ** 2)
    assert value(losses["energy"]) == pytest.approx(value(energy.mean()), rel=1e-12)
    forces = ((outputs["forces"] - batch.forces) / stats.forces_rms) ** 2
    assert value(losses["forces"]) == pytest.approx(value(forces.mean()), rel=1e-12)
    alpha = ((outputs["polarizability"] - batch.polarizability)[:2]
             / n_atoms[:2, None, None] / stats.polarizability_scale) ** 2
    assert value(losses["polarizability"]) == pytest.approx(value(alpha.mean()), rel=1e-12)


def test_conservative_force_source_supervises_minus_dE_dR(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records)
    losses = build_objective(LossConfig(), stats, force_source="conservative")(
        outputs, batch, step=0).tasks
    expected = (((outputs["conservative_forces"] - batch.forces) / stats.forces_rms) ** 2).mean()
    assert value(losses["forces"]) == pytest.approx(value(expected), rel=1e-12)


def test_conservative_forces_task_compares_minus_dE_dR_with_the_force_labels(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records)
    losses = build_objective(LossConfig(), stats)(outputs, batch, step=0).tasks
    expected = (((outputs["conservative_forces"] - batch.forces) / stats.forces_rms) ** 2).mean()
    assert value(losses["conservative_forces"]) == pytest.approx(value(expected), rel=1e-12)
    direct = (((outputs["forces"] - batch.forces) / stats.forces_rms) ** 2).mean()
    assert value(losses["forces"]) == pytest.approx(value(direct), rel=1e-12)


def test_jacobian_term_can_leave_the_energy_surface_alone(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records)
    config = LossConfig(jacobian_weight=1.0, jacobian_pulls="direct_head",
                        weights={"polarizability": 1.0})
    penalty = build_objective(config, stats)(outputs, batch, step=0).regularizers["jacobian"]
    energy_parameters = list(model.heads["energy"].parameters())
    gradients = torch.autograd.grad(penalty, energy_parameters + list(
        model.heads["forces"].parameters()), allow_unused=True, retain_graph=True)
    assert all(g is None or float(g.abs().max()) == 0 for g in gradients[:len(energy_parameters)])
    assert any(g is not None and float(g.abs().max()) > 0
               for g in gradients[len(energy_parameters):])


def test_regularizers_warm_up_linearly(setting):
    records, stats, model = setting
    outputs, batch = outputs_and_batch(model, records)
    config = LossConfig(jacobian_weight=0.5, jacobian_warmup_steps=10, kl_beta=0.01,
                        kl_warmup_steps=0)
    objective = build_objective(config, stats)
    assert objective.needs_conservative_forces
    at_4 = objective(outputs, batch, step=4)
    assert at_4.regularizer_weights == {"jacobian": pytest.approx(0.2), "kl": 0.01}
    direct, conservative = outputs["forces"], outputs["conservative_forces"]
    jacobian = (((direct - conservative) / stats.forces_rms) ** 2).mean()
    assert value(at_4.regularizers["jacobian"]) == pytest.approx(value(jacobian), rel=1e-12)
    kl = outputs["latent_kl"].sum(dim=1).mean()
    assert value(at_4.regularizers["kl"]) == pytest.approx(value(kl), rel=1e-12)
    assert value(at_4.regularization()) == pytest.approx(0.2 * value(jacobian) + 0.01 * value(kl))
    direct_only = LossConfig(jacobian_weight=0.0, weights={"energy": 1.0, "forces": 1.0})
    assert not build_objective(direct_only, stats).needs_conservative_forces
    assert build_objective(LossConfig(jacobian_weight=0.0), stats).needs_conservative_forces


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    residuals = torch.tensor([0.5, -0.5, 3.0, -3.0])
    huber = elementwise_loss(residuals, "huber", delta=1.0)
    assert huber.tolist() == pytest.approx([0.125, 0.125, 2.5, 2.5])
    assert elementwise_loss(residuals, "mse", delta=1.0).tolist() == [0.25, 0.25, 9.0, 9.0]
    assert [linear_warmup(1.0, 0, s) for s in (0, 5)] == [1.0, 1.0]


def test_a_step_without_minus_dE_dR_drops_exactly_the_terms_that_need_it(setting):
    records, stats, model = setting
    objective = build_objective(LossConfig(kl_beta=0.01, kl_warmup_steps=0), stats)
    full = objective(*outputs_and_batch(model, records), step=3)
    outputs, batch = outputs_and_batch(model, records, forces="direct")
    assert "conservative_forces" not in outputs
    light = objective(outputs, batch, step=3, conservative=False)
    assert light.present["conservative_forces"] is False
    assert "conservative_forces" not in light.present_tasks()
    assert set(light.regularizers) == {"kl"} and set(full.regularizers) == {"jacobian", "kl"}
    # The other terms are those of a full step (the direct forces are the same numbers).
    for task in ("energy", "forces", "polarizability"):
        assert value(light.tasks[task]) == pytest.approx(value(full.tasks[task]), rel=1e-12)
    assert value(light.regularization()) == pytest.approx(0.01 * value(full.regularizers["kl"]),
                                                          rel=1e-12)
