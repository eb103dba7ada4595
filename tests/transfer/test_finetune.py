"""Fine-tuning a new head: the old heads stay exact, the new one learns, the file round-trips."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.physics.helpers import water_box
from tests.transfer.helpers import (ORIGINAL_HEADS, batch_of, ethanol_records, only_dipoles,
                                    original_outputs, tiny_model)
from tridft.data.record import Record
from tridft.errors import ConfigError, InputError
from tridft.model.persistence import load_model
from tridft.transfer.finetune import FinetuneOptions, finetune, save_finetuned

FAST = dict(steps=60, batch_size=8, validate_every=10, seed=0)


def dipole_options(**overrides) -> FinetuneOptions:
    return FinetuneOptions(**{"property": "dipole", "kind": "dipole", **FAST, **overrides})


def state_of(module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


def test_frozen_finetuning_leaves_the_original_heads_bit_identical():
    model = tiny_model(seed=1)
    batch = batch_of(model, ethanol_records(6))
    before = original_outputs(model, batch)
    parameters_before = state_of(model)
    result = finetune(model, only_dipoles(ethanol_records(24)), dipole_options(), progress=False)
    after = original_outputs(model, batch)
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{key} changed"
    for key, value in parameters_before.items():
        assert torch.equal(model.state_dict()[key], value), f"parameter {key} changed"
    assert set(model.heads) == set(ORIGINAL_HEADS) | {"dipole"}
    assert result.steps > 0 and np.isfinite(result.validation["mae"])


def test_requires_grad_flags_are_restored():
    model = tiny_model(seed=1)
    flags = [p.requires_grad for p in model.parameters()]
    finetune(model, only_dipoles(ethanol_records(12)), dipole_options(steps=10), progress=False)
    old = [p.requires_grad for name, p in model.named_parameters()
           if not name.startswith("heads.dipole.")]
    assert old == flags


def test_a_dipole_head_learns_without_any_original_label():
    """Training loss falls, and the validation error beats predicting the mean dipole."""
    records = only_dipoles(ethanol_records(40))
    assert all(r.energy is None and r.forces is None and r.polarizability is None
               for r in records)
    model = tiny_model(seed=2)
    result = finetune(model, records, dipole_options(steps=200, lr=5e-3), progress=False)
    first_loss, last_loss = result.history[0][1], result.history[-1][1]
    assert last_loss < 0.5 * first_loss, result.history
    dipoles = np.stack([r.dipole for r in records])
    baseline = float(np.abs(dipoles - dipoles.mean(axis=0)).mean())
    assert result.validation["mae"] < baseline


def fragments(records):
    """Ethanol with 0-3 hydrogens removed: structures that differ in composition."""
    out = []
    for k, record in enumerate(records):
        hydrogens = np.flatnonzero(record.numbers == 1)
        keep = np.setdiff1d(np.arange(record.n_atoms), hydrogens[:k % 4])
        out.append(Record(numbers=record.numbers[keep], positions=record.positions[keep]))
    return out


def centred(record):
    return record.positions - record.positions.mean(axis=0)


def bond_directions(record, longest: float = 1.6) -> np.ndarray:
    """(bonds, 3) unit vectors of the atom pairs closer than ``longest`` Angstrom."""
    i, j = np.triu_indices(record.n_atoms, k=1)
    vectors = record.positions[j] - record.positions[i]
    lengths = np.linalg.norm(vectors, axis=1)
    return vectors[lengths < longest] / lengths[lengths < longest, None]


ELEMENT_VALUE = {1: 1.0, 6: -2.0, 8: 3.0}
LABELS = {  # a property of a structure, shaped as the kind expects; all local in character
    "structure_scalar": lambda r: sum(ELEMENT_VALUE[int(z)] for z in r.numbers),
    "structure_vector": lambda r: r.numbers @ centred(r) / 10,
    "structure_tensor": lambda r: (bond_directions(r).T @ bond_directions(r)).reshape(9),
    "atom_scalar": lambda r: np.linalg.norm(centred(r), axis=1),
}


@pytest.mark.parametrize("kind", sorted(LABELS))
def test_every_kind_learns_from_extra_labels(kind):
    name = f"new_{kind}"
    records = []
    for record in fragments(ethanol_records(32)):
        table = "atom_extra" if kind == "atom_scalar" else "extra"
        records.append(replace(record, **{table: {name: LABELS[kind](record)}}))
    model = tiny_model(seed=3)
    options = FinetuneOptions(property=name, kind=kind, **{**FAST, "steps": 300, "lr": 1e-2})
    result = finetune(model, records, options, progress=False)
    assert result.validation["mae"] < 0.75 * result.initial_validation["mae"], result.history
    assert model.heads[name].level == ("atom" if kind == "atom_scalar" else "structure")


def test_unfreezing_trains_the_pretrained_parts_at_a_smaller_rate():
    records = only_dipoles(ethanol_records(16))
    model = tiny_model(seed=4)
    backbone, bottleneck = state_of(model.backbone), state_of(model.bottleneck)
    finetune(model, records, dipole_options(freeze="backbone", steps=10), progress=False)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone.items())
    assert not all(torch.equal(v, model.bottleneck.state_dict()[k])
                   for k, v in bottleneck.items())

    model = tiny_model(seed=4)
    finetune(model, records, dipole_options(freeze="none", steps=10), progress=False)
    assert not all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone.items())


def test_the_finetuned_model_round_trips_through_a_file(tmp_path):
    model = tiny_model(seed=5)
    result = finetune(model, only_dipoles(ethanol_records(16)), dipole_options(steps=20),
                      progress=False)
    path = tmp_path / "with_dipole.pt"
    save_finetuned(result, path)
    loaded = load_model(path)
    assert list(loaded.heads) == list(model.heads)
    assert loaded.heads["dipole"].kind == "dipole"
    batch = batch_of(model, ethanol_records(5))
    with torch.no_grad():
        expected, actual = model(batch), loaded(batch)
    for key in list(ORIGINAL_HEADS) + ["dipole"]:
        assert torch.equal(actual[key], expected[key]), key
    summary = loaded.metadata["finetuned"][-1]
    assert summary["property"] == "dipole" and summary["freeze"] == "latent"
    assert summary["n_train"] + summary["n_validation"] == 16


def test_bad_requests_are_one_line_errors():
    records = only_dipoles(ethanol_records(8))
    with pytest.raises(ConfigError, match="already has a head named 'energy'"):
        finetune(tiny_model(), records, dipole_options(property="energy"), progress=False)
    with pytest.raises(InputError, match="more labelled structures"):
        finetune(tiny_model(), records, dipole_options(n_train=9), progress=False)
    with pytest.raises(InputError, match="periodic"):
        box = replace(water_box(), dipole=np.zeros(3))
        finetune(tiny_model(), records + [box], dipole_options(), progress=False)
    wrong = [replace(r, extra={"gap": np.zeros(2)}) for r in records]
    with pytest.raises(InputError, match="field gap"):
        finetune(tiny_model(), wrong, FinetuneOptions(property="gap", kind="structure_scalar"),
                 progress=False)
    with pytest.raises(ConfigError, match="steps or epochs"):
        FinetuneOptions.create(property="x", kind="dipole", steps=3, epochs=2)


def test_freeze_modes_also_go_by_what_they_freeze():
    def freeze(name):
        return FinetuneOptions.create(property="x", kind="dipole", freeze=name).freeze

    assert freeze("backbone+bottleneck") == "latent" and freeze("nothing") == "none"
    assert [freeze(name) for name in ("latent", "backbone", "none")] == [
        "latent", "backbone", "none"]
    with pytest.raises(ConfigError, match="freeze"):
        freeze("bottleneck")
