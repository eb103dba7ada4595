"""Denoising as an auxiliary task: the noise, the readout's symmetry, training and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.physics.helpers import ethanol, perturbed_model, random_orthogonal, transformed
from tridft.data.batch import collate
from tridft.errors import CheckpointError
from tridft.model.persistence import load_model, safe_torch_load
from tridft.train import checkpoint as ckpt
from tridft.train.denoising import Denoiser
from tridft.train.loop import train

from .test_loop import read_csv
from .tiny import tiny_config, write_ethanol_subset


def test_the_target_is_the_displacement_in_units_of_sigma():
    model = perturbed_model()
    denoiser = Denoiser(model, sigma=0.05)
    batch = collate([ethanol(k % 4) for k in range(40)], model.cutoff, dtype=torch.float64)
    torch.manual_seed(0)
    noisy, target = denoiser.perturb(batch)
    torch.testing.assert_close(noisy.positions - batch.positions, 0.05 * target)
    assert target.shape == (360, 3)
    assert abs(float(target.std()) - 1.0) < 0.05  # 1080 unit-variance draws
    assert torch.equal(noisy.edge_index, batch.edge_index)  # the clean neighbour list


def test_the_readout_turns_with_the_structure():
    model = perturbed_model()
    torch.manual_seed(1)
    denoiser = Denoiser(model, sigma=0.02).double()
    rotation = random_orthogonal(np.random.default_rng(3), improper=True)
    record = ethanol(2)
    model(collate([record], model.cutoff, dtype=torch.float64))
    prediction = denoiser.prediction().detach()
    model(collate([transformed(record, rotation, np.array([1.0, -2.0, 0.5]))], model.cutoff,
                  dtype=torch.float64))
    rotated = denoiser.prediction().detach()
    assert float(prediction.abs().max()) > 1e-4  # not trivially zero
    torch.testing.assert_close(rotated, prediction @ torch.from_numpy(rotation).T)


def test_one_loss_per_forward_pass():
    model = perturbed_model()
    denoiser = Denoiser(model, sigma=0.02).double()
    batch = collate([ethanol(0)], model.cutoff, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="has not run"):
        denoiser.loss(torch.zeros(9, 3, dtype=torch.float64))
    model(batch)
    assert float(denoiser.loss(torch.zeros(9, 3, dtype=torch.float64)).detach()) > 0
    with pytest.raises(RuntimeError, match="has not run"):
        denoiser.loss(torch.zeros(9, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="positive"):
        Denoiser(model, sigma=0.0)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    return write_ethanol_subset(tmp_path_factory.mktemp("data") / "ethanol24.extxyz", 24)


def test_a_denoising_run_trains_on_undisplaced_structures_and_keeps_the_readout_out(
        tmp_path, data_path):
    config = tiny_config(tmp_path / "run", data_path, training={"position_noise": 0.02})
    result = train(config, progress=False)
    plain = train(tiny_config(tmp_path / "plain", data_path), progress=False)
    assert result.steps == plain.steps == 6
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert all(float(row["reg_denoising"]) > 0 for row in rows)
    # Step 1 starts from the same weights on the same batch: the property heads saw the
    # undisplaced structures (energies and forces, whose labels would not hold for a
    # displaced one, included).
    first_plain = read_csv(tmp_path / "plain" / "metrics.csv")[0]
    for task in ("energy", "forces", "conservative_forces", "polarizability"):
        assert rows[0][f"loss_{task}"] == first_plain[f"loss_{task}"], task
    payload = safe_torch_load(tmp_path / "run" / "checkpoint.pt")
    assert any(name.startswith("readout.") for name in payload["denoiser"])
    assert set(load_model(result.best_model_path).state_dict()) \
        == set(load_model(plain.best_model_path).state_dict())
    assert safe_torch_load(tmp_path / "plain" / "checkpoint.pt")["denoiser"] is None


def test_resuming_a_denoising_run_from_a_checkpoint_without_the_readout_is_refused(
        tmp_path, data_path):
    train(tiny_config(tmp_path / "run", data_path), progress=False)
    payload = ckpt.load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    model = load_model(tmp_path / "run" / "model.pt")
    with pytest.raises(CheckpointError, match="position_noise"):
        ckpt.restore(payload, model=model, optimizer=_NoState(), schedule=_NoState(),
                     ema=None, balancer=_NoState(), denoiser=Denoiser(model, sigma=0.02))


class _NoState:
    def load_state_dict(self, state):
        pass

