"""Metrics of tridft.train.evaluate against values computed by hand from a model with
known outputs, masking of absent labels, and the unknown-element error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tridft.data.record import Record
from tridft.errors import InputError
from tridft.model.model import build_model
from tridft.train.evaluate import evaluate, predict, predictions_and_targets

# The known model: E = K sum_i |r_i|^2, so -dE/dR = -2 K r; the direct head is off by a
# constant vector D; the polarizability is P * n_atoms * I. Everything below derives
# its expected numbers from these three constants.
K = 0.3  # eV/A^2
D = np.array([0.12, -0.05, 0.0])  # eV/A
P = 1.5  # A^3 per atom


class KnownModel(nn.Module):
    """A stand-in with the interface evaluate() uses: elements, cutoff, forward(batch, forces).

    With ``dipole_head`` it also predicts a dipole of zero, like an extra head would.
    """

    elements = [1, 6, 8]
    cutoff = 2.0

    def __init__(self, dipole_head: bool = False, direct_head: bool = True):
        super().__init__()
        self.dipole_head = dipole_head
        self.direct_head = direct_head
        self.k = nn.Parameter(torch.tensor(K, dtype=torch.float64))  # sets dtype float64

    def forward(self, batch, forces="direct"):
        r = batch.positions
        per_atom = self.k * (r**2).sum(-1)
        energy = torch.zeros(batch.n_structures, dtype=r.dtype).index_add(
            0, batch.structure_index, per_atom)
        eye = torch.eye(3, dtype=r.dtype)
        outputs = {"energy": energy,
                   "polarizability": P * batch.n_atoms.to(r.dtype)[:, None, None] * eye,
                   "latent_kl": torch.zeros(len(r), 2, dtype=r.dtype)}
        if forces in ("direct", "both") and self.direct_head:
            outputs["forces"] = -2 * self.k * r + torch.as_tensor(D)
        if forces in ("conservative", "both"):
            outputs["conservative_forces"] = -2 * self.k * r
        if self.dipole_head:
            outputs["dipole"] = torch.zeros(batch.n_structures, 3, dtype=r.dtype)
        return outputs


def exact_energy(positions: np.ndarray) -> float:
    return K * float((positions**2).sum())


def molecule(n_atoms: int, seed: int) -> Record:
    rng = np.random.default_rng(seed)
    numbers = rng.choice([1, 6, 8], size=n_atoms)
    positions = rng.normal(scale=1.5, size=(n_atoms, 3))
    positions -= positions.mean(axis=0)  # batches centre structures; KnownModel is not
    return Record(numbers=numbers, positions=positions, source=f"made-up.xyz:{seed}")


@pytest.fixture
def labelled():
    """Four molecules labelled with the exact model plus known errors; the third has no
    polarizability, the fourth no forces."""
    rng = np.random.default_rng(7)
    records, errors = [], {"energy": [], "polarizability": []}
    for seed, n_atoms in enumerate([3, 5, 2, 4]):
        record = molecule(n_atoms, seed)
        energy_error = rng.normal()
        asymmetric = rng.normal(size=(3, 3))
        polarizability_error = asymmetric + asymmetric.T
        record.energy = exact_energy(record.positions) - energy_error  # prediction - label
        record.forces = -2 * K * record.positions
        record.polarizability = P * n_atoms * np.eye(3) - polarizability_error
        errors["energy"].append(energy_error)
        errors["polarizability"].append(polarizability_error)
        records.append(record)
    records[2].polarizability = None
    records[3].forces = None
    return records, errors


def test_metrics_equal_hand_computed_values(labelled):
    records, errors = labelled
    metrics = evaluate(KnownModel(), records, batch_size=3)  # batches of 3 and 1

    energy_errors = np.array(errors["energy"])
    n_atoms = np.array([r.n_atoms for r in records])
    assert metrics["n_structures"] == 4
    assert metrics["n_atoms"] == n_atoms.sum()
    assert metrics["energy_mae"] == pytest.approx(np.abs(energy_errors).mean())
    assert metrics["energy_rmse"] == pytest.approx(np.sqrt((energy_errors**2).mean()))
    assert metrics["energy_mae_per_atom"] == pytest.approx(
        np.abs(energy_errors / n_atoms).mean())

    # Direct forces are off by D on every atom that carries forces (records 0-2).
    assert metrics["forces_mae"] == pytest.approx(np.abs(D).mean())
    assert metrics["forces_rmse"] == pytest.approx(np.sqrt((D**2).mean()))

    # Only records 0, 1 and 3 carry a polarizability.
    polarizability_errors = np.array([errors["polarizability"][i] for i in (0, 1, 3)])
    assert metrics["polarizability_mae"] == pytest.approx(np.abs(polarizability_errors).mean())
    assert metrics["polarizability_rmse"] == pytest.approx(
        np.sqrt((polarizability_errors**2).mean()))
    traces = np.trace(polarizability_errors, axis1=1, axis2=2)
    assert metrics["polarizability_iso_mae"] == pytest.approx(np.abs(traces / 3).mean())

    # |F_direct + dE/dR| = |D| on every atom, labelled or not.
    assert metrics["jacobian_consistency_mae"] == pytest.approx(np.linalg.norm(D))
    assert metrics["jacobian_consistency_max"] == pytest.approx(np.linalg.norm(D))


def test_conservative_forces_are_compared_when_asked(labelled):
    records, _ = labelled
    metrics = evaluate(KnownModel(), records, forces="conservative")
    assert metrics["forces_mae"] == pytest.approx(0.0, abs=1e-12)
    # The consistency does not depend on which forces are compared with the labels.
    assert metrics["jacobian_consistency_mae"] == pytest.approx(np.linalg.norm(D))


def test_a_model_without_a_direct_head_is_judged_on_its_conservative_forces(labelled):
    """Trained on -dE/dR alone (loss.weights.forces 0): the force error is still reported
    (and so still chooses the best model during training)."""
    records, _ = labelled
    metrics = evaluate(KnownModel(direct_head=False), records, forces="direct")
    assert metrics["forces_mae"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["conservative_forces_mae"] == metrics["forces_mae"]
    assert "direct_forces_mae" not in metrics


def test_metrics_of_absent_labels_are_left_out():
    records = [molecule(3, seed) for seed in range(3)]
    records[1].energy = exact_energy(records[1].positions) + 0.5
    metrics = evaluate(KnownModel(), records)
    assert metrics["energy_mae"] == pytest.approx(0.5)  # only the one labelled structure
    for absent in ("forces", "polarizability", "dipole"):
        assert not [key for key in metrics if key.startswith(absent)]
    assert "jacobian_consistency_mae" in metrics


def test_extra_head_is_compared_with_its_label(labelled):
    records, _ = labelled
    assert "dipole_mae" not in evaluate(KnownModel(dipole_head=True), records)  # no labels
    records[1].dipole = np.array([0.3, -0.6, 0.0])  # the model predicts zero
    metrics = evaluate(KnownModel(dipole_head=True), records)
    assert metrics["dipole_mae"] == pytest.approx(0.3)
    assert metrics["dipole_rmse"] == pytest.approx(np.sqrt((0.09 + 0.36) / 3))
    assert "dipole_mae" not in evaluate(KnownModel(), records)  # labels but no head


def test_pairs_hold_only_labelled_entries(labelled):
    records, _ = labelled
    pairs = predictions_and_targets(KnownModel(), records)
    labelled_atoms = sum(r.n_atoms for r in records if r.forces is not None)
    assert pairs["forces"].predicted.shape == (labelled_atoms, 3)
    assert pairs["polarizability"].target.shape == (3, 3, 3)
    assert pairs["energy_per_atom"].predicted.shape == (4,)
    np.testing.assert_allclose(pairs["forces"].errors, np.tile(D, (labelled_atoms, 1)), atol=1e-12)


def test_predict_gives_each_structure_its_own_outputs(labelled):
    records, _ = labelled
    direct = predict(KnownModel(), records, forces="direct", batch_size=2)
    conservative = predict(KnownModel(), records, forces="conservative", batch_size=2)
    for record, d, c in zip(records, direct, conservative):
        assert d["energy"] == pytest.approx(exact_energy(record.positions))
        np.testing.assert_allclose(c["forces"], -2 * K * record.positions)
        np.testing.assert_allclose(d["forces"], -2 * K * record.positions + D)
        np.testing.assert_allclose(d["polarizability"], P * record.n_atoms * np.eye(3))
        assert "latent_kl" not in d


def test_unknown_element_names_structure_and_element():
    records = [molecule(3, 0), molecule(3, 1)]
    records[1].numbers[2] = 26
    with pytest.raises(InputError, match=r"made-up.xyz:1: element Fe \(Z=26\)"):
        evaluate(KnownModel(), records)


def test_metrics_do_not_depend_on_batching():
    """A real model: splitting the flat batch back into structures must keep the order."""
    torch.manual_seed(0)
    model = build_model({"features": 8, "layers": 1, "head_hidden": 8, "dtype": "float64"})
    records = []
    for seed in range(5):
        record = molecule(2 + seed, seed)
        record.energy, record.forces = 1.0, np.zeros((record.n_atoms, 3))
        record.polarizability = np.eye(3)
        records.append(record)
    one_by_one = evaluate(model, records, batch_size=1)
    together = evaluate(model, records, batch_size=64)
    assert one_by_one.keys() == together.keys()
    for key in together:
        assert one_by_one[key] == pytest.approx(together[key], rel=1e-9, abs=1e-12)
    model.train()  # evaluate runs in eval mode and leaves the mode as it found it
    evaluate(model, records[:1])
    assert model.training
