"""LLPR: the ghost Jacobians are the true last-layer gradients, the calibration is
calibrated on its own data, survives saving, and the uncertainties are invariant."""

import numpy as np
import pytest
import torch

from tests.physics.helpers import (ETHANOL_FILE, perturbed_model, random_orthogonal,
                                   transformed)
from tridft.data.batch import collate
from tridft.data.io import read_structures
from tridft.model.inference import UncertaintyUnavailable, run_model
from tridft.model.persistence import load_model, save_model
from tridft.uncertainty.calibrate import fit_uncertainty
from tridft.uncertainty.llpr import probe, supported_heads


@pytest.fixture(scope="module")
def records():
    return read_structures(ETHANOL_FILE)[:60]


@pytest.fixture(scope="module")
def calibrated(records):
    model = perturbed_model(seed=3)
    model.uncertainty = fit_uncertainty(model, records[:40], records[40:])
    return model


def jacobians(model, records):
    batch = collate(records, model.cutoff, dtype=torch.float64)
    with torch.enable_grad(), probe(model, batch, supported_heads(model)) as p:
        outputs = model(batch)
        return outputs, p.jacobians(outputs)


def parameter_gradient(model, value, head):
    """d value / d (weight, bias) of the head's last layer, flattened like the probe's."""
    paths, _ = supported_heads(model)[head]
    leaves = []
    for path in paths:
        layer = model.get_submodule(path)
        leaves += [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    grads = torch.autograd.grad(value, leaves, retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("edge_basis", [0, 4])
def test_ghost_jacobians_are_the_last_layer_gradients(records, edge_basis):
    model = perturbed_model(seed=1, polarizability_edge_basis=edge_basis)
    assert len(supported_heads(model)["polarizability"][0]) == (2 if edge_basis else 1)
    pair = records[:2]
    _, J = jacobians(model, pair)
    for s in range(2):
        outputs = model(collate([pair[s]], model.cutoff, dtype=torch.float64))
        expected = parameter_gradient(model, outputs["energy"][0], "energy")
        assert torch.allclose(J["energy"][s, 0], expected, atol=1e-10)
        expected = parameter_gradient(model, outputs["polarizability"][0, 1, 2],
                                      "polarizability")
        assert torch.allclose(J["polarizability"][s, 5], expected, atol=1e-10)
        atom = 4 + s
        expected = parameter_gradient(model, outputs["forces"][atom, 2], "forces")
        assert torch.allclose(J["forces"][9 * s + atom, 2], expected, atol=1e-10)
    assert J["energy"].shape[:2] == (2, 1) and J["polarizability"].shape[:2] == (2, 9)
    assert J["forces"].shape[:2] == (18, 3)


def test_the_probe_leaves_outputs_and_layers_unchanged(records):
    model = perturbed_model(seed=1)
    batch = collate(records[:3], model.cutoff, dtype=torch.float64)
    plain = model(batch)
    probed, _ = jacobians(model, records[:3])
    for key in ("energy", "forces", "polarizability"):
        assert torch.equal(plain[key], probed[key].detach())
    after = model(batch)  # the hooks are gone
    assert torch.equal(after["energy"], plain["energy"])


def test_calibration_is_calibrated_on_the_validation_split(calibrated, records):
    llpr = calibrated.uncertainty
    assert set(llpr.heads) == {"energy", "forces", "polarizability"}
    batch = collate(records[40:], calibrated.cutoff, dtype=torch.float64)
    outputs = run_model(calibrated, batch, uncertainty=True)
    z2 = ((outputs["energy"] - batch.energy) / outputs["energy_uncertainty"]) ** 2
    assert float(z2.mean()) == pytest.approx(1.0, rel=1e-6)
    assert llpr.heads["forces"].partner == "conservative_forces"
    assert outputs["forces_uncertainty"].shape == (20 * 9,)
    assert outputs["forces_uncertainty_max"].shape == (20,)
    assert outputs["polarizability_uncertainty"].shape == (20,)
    assert "conservative_forces" not in outputs  # asked for direct forces only
    for report in llpr.report.values():
        assert np.isfinite(report["validation_nll"])


def test_uncertainties_are_invariant_under_rotations_and_translations(calibrated, records):
    rotation = random_orthogonal(np.random.default_rng(0), improper=True)
    moved = transformed(records[50], rotation, np.array([1.0, -2.0, 0.5]))
    out = [run_model(calibrated, collate([r], calibrated.cutoff, dtype=torch.float64),
                     uncertainty=True) for r in (records[50], moved)]
    for key in ("energy_uncertainty", "forces_uncertainty", "polarizability_uncertainty"):
        assert torch.allclose(out[0][key], out[1][key], rtol=1e-8), key


def test_a_compressed_molecule_is_flagged(calibrated, records):
    from dataclasses import replace

    record = records[45]
    centre = record.positions.mean(axis=0)
    squeezed = replace(record, positions=(record.positions - centre) * 0.8 + centre)
    batch = collate(records[40:] + [squeezed], calibrated.cutoff, dtype=torch.float64)
    outputs = run_model(calibrated, batch, uncertainty=True)
    for key in ("energy_uncertainty", "forces_uncertainty_max", "polarizability_uncertainty"):
        assert float(outputs[key][-1]) > float(outputs[key][:-1].max()), key


def test_the_calibration_is_saved_with_the_model(calibrated, records, tmp_path):
    save_model(calibrated, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    batch = collate(records[:5], calibrated.cutoff, dtype=torch.float64)
    before = run_model(calibrated, batch, uncertainty=True)
    after = run_model(loaded, batch, uncertainty=True)
    for key in ("energy_uncertainty", "forces_uncertainty", "polarizability_uncertainty"):
        assert torch.allclose(before[key], after[key], rtol=1e-12)
    assert loaded.uncertainty.report == calibrated.uncertainty.report


def test_a_model_without_calibration_says_so(records):
    model = perturbed_model(seed=2)
    batch = collate(records[:1], model.cutoff, dtype=torch.float64)
    with pytest.raises(UncertaintyUnavailable, match="no uncertainty calibration"):
        run_model(model, batch, uncertainty=True)
    assert "energy" in run_model(model, batch)  # without uncertainty it runs
