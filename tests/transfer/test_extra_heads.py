"""Extra heads: equivariant by construction, a neutral dipole independent of the origin.

Every test of the dipole runs for both charge models (local and equilibrated)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.physics.helpers import (assert_close, ethanol, model_dtype, random_orthogonal,
                                   side_by_side, transformed, water_box)
from tests.transfer.helpers import batch_of, tiny_model
from tridft.errors import InputError
from tridft.model.extra_heads import TOTAL_CHARGE, DipoleHead
from tridft.model.heads import HEAD_TYPES, build_head

TOLERANCE = 1e-9
# How each kind's output y transforms when the structure goes through x -> R x + t.
TRANSFORMS = {
    "structure_scalar": lambda y, R: y,
    "atom_scalar": lambda y, R: y,
    "structure_vector": lambda y, R: y @ R.T,
    "dipole": lambda y, R: y @ R.T,
    "structure_tensor": lambda y, R: R @ y @ R.T,
}
# The heads of the fixture: name -> (kind, options); the equilibrated-charge dipole is
# the dipole kind with another charge model.
HEADS = {**{kind: (kind, {}) for kind in TRANSFORMS},
         "dipole_equilibrated": ("dipole", {"charges": "equilibrated"})}
DIPOLES = ("dipole", "dipole_equilibrated")


@pytest.fixture(scope="module")
def model():
    model = tiny_model(seed=5)
    config = model.config
    for name, (kind, options) in HEADS.items():
        torch.manual_seed(len(name))
        head = HEAD_TYPES[kind](f"new_{name}", config.latent_scalar_width,
                                config.latent_vector_width, config.head_hidden, **options)
        model.add_head(head.to(model_dtype(model)))
    return model.eval()


def head_output(model, records, kind):
    with torch.no_grad():
        return model(batch_of(model, records))[f"new_{kind}"]


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotation_inversion"])
@pytest.mark.parametrize("kind", sorted(HEADS))
def test_new_heads_transform_with_the_structure(model, kind, improper):
    rng = np.random.default_rng([sorted(HEADS).index(kind), improper])
    rotation = random_orthogonal(rng, improper=improper)
    record = ethanol(2)
    before = head_output(model, [record], kind)
    after = head_output(model, [transformed(record, rotation, rng.normal(size=3) * 5)], kind)
    assert float(before.abs().max()) > 1e-4, "vacuous: the output is ~0"
    R = torch.as_tensor(rotation, dtype=torch.float64)
    assert_close(after, TRANSFORMS[HEADS[kind][0]](before, R), TOLERANCE, kind)


@pytest.mark.parametrize("name", DIPOLES)
def test_a_vector_head_is_not_trivially_invariant(model, name):
    """The equivariance test above could not tell a zero-ish or invariant vector apart."""
    record = ethanol(1)
    rotation = random_orthogonal(np.random.default_rng(7))
    before = head_output(model, [record], name)
    after = head_output(model, [transformed(record, rotation)], name)
    assert float((after - before).abs().max()) > 1e-3


@pytest.mark.parametrize("name", DIPOLES)
def test_the_neutral_dipole_does_not_depend_on_the_origin(model, name):
    """sum q_i (r_i - centroid) = sum q_i r_i when sum q_i = 0: any origin gives the same mu."""
    head = model.heads[f"new_{name}"]
    batch = batch_of(model, [ethanol(0), ethanol(3)])
    with torch.no_grad():
        latent = model.latent(batch)
        charges = head.atomic_charges(latent, batch)
        dipole = head(latent, batch)
        about_origin = torch.zeros_like(dipole).index_add_(
            0, batch.structure_index, charges[:, None] * batch.positions
            + head.atomic_dipoles(latent, batch))
    per_structure = torch.zeros(2, dtype=charges.dtype).index_add_(0, batch.structure_index,
                                                                   charges)
    assert_close(per_structure, torch.zeros(2), 1e-12, "total charge")
    assert float(charges.abs().max()) > 1e-3, "vacuous: no charges"
    assert_close(dipole, about_origin, TOLERANCE, "dipole about the origin")
    far = head_output(model, [transformed(ethanol(0), translation=np.array([80.0, -60, 40]))],
                      name)
    assert_close(far, dipole[:1], TOLERANCE, "translated dipole")


@pytest.mark.parametrize("name", DIPOLES)
def test_charges_add_up_to_the_total_charge_in_the_batch(model, name):
    head = model.heads[f"new_{name}"]
    batch = batch_of(model, [ethanol(0), ethanol(1)])
    total = torch.tensor([1.0, -2.0], dtype=torch.float64)
    charged = replace(batch, extra={TOTAL_CHARGE: (total, torch.tensor([True, True]))})
    with torch.no_grad():
        charges = head.atomic_charges(model.latent(charged), charged)
    sums = torch.zeros(2, dtype=charges.dtype).index_add_(0, batch.structure_index, charges)
    assert_close(sums, total, 1e-10, "charges per structure")


def test_periodic_structures_are_refused_by_the_dipole_head(model):
    """The head refuses a cell; the model leaves it out of a batch holding one (the
    other heads still predict the cell)."""
    batch = batch_of(model, [ethanol(0), water_box()])
    with torch.no_grad(), pytest.raises(InputError, match="periodic"):
        model.heads["new_dipole"](model.latent(batch), batch)
    with torch.no_grad():
        outputs = model(batch)
    assert "new_dipole" not in outputs and "new_structure_scalar" in outputs


def test_extensive_and_intensive_structure_scalars(model):
    """Two far-apart copies: an extensive scalar doubles, an intensive one stays the same."""
    config = model.config
    intensive = build_head({**model.heads["new_structure_scalar"].spec(),
                            "name": "intensive", "extensive": False})
    intensive.load_state_dict(model.heads["new_structure_scalar"].state_dict())
    record = ethanol(1)
    pair = side_by_side(record, record, gap=2 * config.cutoff)
    batch = batch_of(model, [record, pair])
    with torch.no_grad():
        latent = model.latent(batch)
        extensive = model.heads["new_structure_scalar"](latent, batch)
        mean = intensive.to(torch.float64)(latent, batch)
    assert_close(extensive[1], 2 * extensive[0], TOLERANCE, "extensive")
    assert_close(mean[1], mean[0], TOLERANCE, "intensive")
    assert_close(mean[0], extensive[0] / record.n_atoms, TOLERANCE, "mean = sum / n")


def test_structure_tensor_reuses_the_polarizability_construction(model):
    from tridft.model.heads import PolarizabilityHead

    head = model.heads["new_structure_tensor"]
    assert isinstance(head, PolarizabilityHead)
    output = head_output(model, [ethanol(0)], "structure_tensor")
    assert_close(output, output.transpose(1, 2), 1e-12, "symmetric")


@pytest.mark.parametrize("kind", sorted(HEADS))
def test_specs_rebuild_the_same_head(model, kind):
    original = model.heads[f"new_{kind}"]
    rebuilt = build_head(original.spec()).to(torch.float64)
    rebuilt.load_state_dict(original.state_dict())
    batch = batch_of(model, [ethanol(1)])
    with torch.no_grad():
        latent = model.latent(batch)
        assert torch.equal(rebuilt(latent, batch), original(latent, batch))
    assert type(rebuilt) is type(original) and isinstance(original, type(original))
    assert DipoleHead.kind == "dipole"
