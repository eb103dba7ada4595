"""Heads: what each one adds up, how they are rebuilt, and the force modes of the model."""

import pytest
import torch

from tests.physics.helpers import ethanol, model_dtype, perturbed_model, water_box
from tridft.data.batch import collate
from tridft.model.heads import HEAD_TYPES, build_head
from tridft.model.jacobian import consistency_error, jacobian_penalty


@pytest.fixture(scope="module")
def model():
    return perturbed_model(seed=21)


@pytest.fixture(scope="module")
def batch(model):
    return collate([ethanol(0), water_box()], model.cutoff, dtype=model_dtype(model))


def test_energy_is_the_sum_of_atomic_energies_plus_references(model, batch):
    head = model.heads["energy"]
    with torch.no_grad():
        latent = model.latent(batch)
        atomic = head.atomic_energies(latent, batch)
        energy = head(latent, batch)
        torch.testing.assert_close(energy, torch.zeros_like(energy).index_add_(
            0, batch.structure_index, atomic))
        # A reference energy per element shifts each structure by sum over its atoms.
        references = head.reference_energies.clone()
        head.reference_energies[1] += 0.5   # H
        head.reference_energies[8] -= 2.0   # O
        shifted = head(latent, batch)
        head.reference_energies.copy_(references)
    for s in range(batch.n_structures):
        numbers = batch.numbers[batch.structure_index == s]
        expected = 0.5 * (numbers == 1).sum() - 2.0 * (numbers == 8).sum()
        assert float(shifted[s] - energy[s]) == pytest.approx(float(expected), abs=1e-10)


def test_polarizability_is_symmetric_with_a_shifted_isotropic_part(model, batch):
    head = model.heads["polarizability"]
    with torch.no_grad():
        latent = model.latent(batch)
        alpha = head(latent, batch)
        torch.testing.assert_close(alpha, alpha.transpose(1, 2))
        anisotropic = alpha - alpha.diagonal(dim1=1, dim2=2).mean(-1)[:, None, None] * torch.eye(3)
        # Not only isotropic (the anisotropic part, a product of two vector features, starts
        # small before training, but it is there).
        assert float(anisotropic.abs().max()) > 1e-7
        # The shift (the mean polarizability per atom) moves only the isotropic part.
        head.shift += 1.5
        moved = head(latent, batch)
        head.shift -= 1.5
    eye = torch.eye(3, dtype=alpha.dtype)
    torch.testing.assert_close(moved - alpha, 1.5 * batch.n_atoms.to(alpha.dtype)[:, None, None]
                               * eye)


def test_direct_forces_scale_with_their_statistics_buffer(model, batch):
    head = model.heads["forces"]
    with torch.no_grad():
        latent = model.latent(batch)
        forces = head(latent, batch)
        head.scale *= 3.0
        scaled = head(latent, batch)
        head.scale /= 3.0
    assert forces.shape == (batch.numbers.shape[0], 3)
    torch.testing.assert_close(scaled, 3.0 * forces)


@pytest.mark.parametrize("name", ["energy", "forces", "polarizability"])
def test_a_head_is_rebuilt_from_its_spec(model, batch, name):
    head = model.heads[name]
    rebuilt = build_head(head.spec()).to(model_dtype(model))
    rebuilt.load_state_dict(head.state_dict())
    with torch.no_grad():
        latent = model.latent(batch)
        assert torch.equal(rebuilt(latent, batch), head(latent, batch))


def test_unknown_head_kinds_and_duplicate_names_are_refused(model):
    with pytest.raises(ValueError, match="unknown head kind 'quadrupole'.*energy"):
        build_head({"kind": "quadrupole", "name": "q"})
    spec = model.heads["energy"].spec()
    with pytest.raises(ValueError, match="already has a head named 'energy'"):
        model.add_head(HEAD_TYPES["energy"](**{k: v for k, v in spec.items() if k != "kind"}))


def test_force_modes(model, batch):
    with pytest.raises(ValueError, match="forces must be one of"):
        model(batch, forces="numerical")
    assert "conservative_forces" not in model(batch, forces="direct")
    both = model(batch, forces="both")
    assert both["forces"].shape == both["conservative_forces"].shape


def test_conservative_forces_keep_their_graph_only_while_training(model, batch):
    model.eval()
    with torch.no_grad():  # inference: the gradient is taken, the graph is not kept
        outputs = model(batch, forces="conservative")
    assert not outputs["conservative_forces"].requires_grad
    model.train()
    try:
        outputs = model(batch, forces="conservative")
        # A force loss reaches the parameters (second derivatives through create_graph).
        outputs["conservative_forces"].pow(2).sum().backward()
    finally:
        model.eval()
    gradient = model.backbone.embedding.weight.grad
    assert gradient is not None and float(gradient.abs().max()) > 0
    model.zero_grad(set_to_none=True)


def test_the_jacobian_penalty_and_the_consistency_error(model, batch):
    model.train()  # the penalty is differentiated while training (create_graph)
    try:
        outputs = model(batch, forces="both")
    finally:
        model.eval()
    direct, conservative = outputs["forces"], outputs["conservative_forces"]
    difference = (direct - conservative).detach()
    penalty = jacobian_penalty(direct, conservative, scale=2.0)
    torch.testing.assert_close(penalty.detach(), (difference / 2.0).pow(2).mean())
    assert float(jacobian_penalty(direct, direct).detach()) == 0.0
    errors = consistency_error(direct, conservative)
    norms = difference.norm(dim=-1)
    assert errors["jacobian_consistency_mae"] == pytest.approx(float(norms.mean()))
    assert errors["jacobian_consistency_max"] == pytest.approx(float(norms.max()))
    # The penalty pulls on the direct head as well as on the energy surface.
    model.zero_grad(set_to_none=True)
    penalty.backward()
    for name in ("forces", "energy"):
        grads = [p.grad for p in model.heads[name].parameters() if p.grad is not None]
        assert grads and max(float(g.abs().max()) for g in grads) > 0, name
    model.zero_grad(set_to_none=True)
