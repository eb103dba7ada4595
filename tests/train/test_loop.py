"""The training loop end to end on a tiny model: files, resume, NaN guard, balancing options."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from tridft.errors import TriDFTError
from tridft.model.model import TriDFTModel
from tridft.model.persistence import load_model, safe_torch_load
from tridft.train.ema import ExponentialMovingAverage
from tridft.train.loop import train

from .tiny import tiny_config, write_ethanol_subset


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ethanol24.extxyz"
    return write_ethanol_subset(path, 24, without_polarizability={1, 5, 9, 13, 17, 21})


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_run_writes_model_split_stats_and_logs(tmp_path, data_path):
    config = tiny_config(tmp_path / "run", data_path,
                         loss={"balancing": "uncertainty", "pcgrad": True})
    result = train(config, progress=False)

    assert result.steps == 6 and result.stopped_because == "max_steps"
    assert result.best_model_path == tmp_path / "run" / "model.pt"
    model = load_model(result.best_model_path)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["validation"]) == 4 and len(split["train"]) == 20
    assert model.metadata["split"]["train"] == split["train"]
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert model.metadata["stats"] == stats
    assert stats["n_structures"] == 20  # statistics of the training split only
    assert model.metadata["units"]["polarizability"] == "Angstrom^3"
    assert model.metadata["training"]["stopped_because"] == "max_steps"
    assert set(result.metrics) >= {"energy_mae", "forces_mae", "polarizability_mae",
                                   "jacobian_consistency_mae"}
    assert (tmp_path / "run" / "config.yaml").is_file()

    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    for column in ("lr", "loss_energy", "loss_forces", "loss_polarizability", "reg_jacobian",
                   "reg_kl", "weight_energy", "weight_polarizability", "grad_norm"):
        assert all(row[column] != "" for row in rows), column
    # Cosines are measured every 2 steps (at steps 0, 2, 4), logged with the next row.
    assert [row["cos_energy|forces"] != "" for row in rows] == [True, False, True, False,
                                                                  True, False]
    # Uncertainty weights are learned: they leave their initial value of 1.
    assert float(rows[-1]["weight_energy"]) != 1.0
    validations = read_csv(tmp_path / "run" / "validation.csv")
    assert [int(row["step"]) for row in validations] == [3, 6]


def test_conservative_every_k_computes_minus_dE_dR_on_every_kth_step(tmp_path, data_path):
    config = tiny_config(tmp_path / "run", data_path, loss={"conservative_every": 3})
    result = train(config, progress=False)
    assert result.steps == 6
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    # Steps 0 and 3 (logged as rows 1 and 4) carry -dE/dR; the others train without it.
    with_minus_dE_dR = [True, False, False, True, False, False]
    assert [row["loss_conservative_forces"] != "" for row in rows] == with_minus_dE_dR
    assert [row["reg_jacobian"] != "" for row in rows] == with_minus_dE_dR
    assert all(row["loss_forces"] != "" and row["loss_energy"] != "" for row in rows)
    # Validation still measures both force estimates.
    assert {"conservative_forces_mae", "jacobian_consistency_mae"} <= set(result.metrics)


def parameters_of(checkpoint_path) -> dict[str, torch.Tensor]:
    payload = safe_torch_load(checkpoint_path)
    return {**{f"model.{k}": v for k, v in payload["model"]["state_dict"].items()},
            **{f"ema.{k}": v for k, v in payload["ema"]["model"].items()},
            **{f"balancer.{k}": v for k, v in payload["balancer"].items() if torch.is_tensor(v)},
            **{f"denoiser.{k}": v for k, v in (payload.get("denoiser") or {}).items()}}


@pytest.mark.parametrize("batch_atoms, position_noise", [(None, 0.0), (20, 0.0), (None, 0.02)])
def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tmp_path, data_path, monkeypatch,
                                                               batch_atoms, position_noise):
    # 20 training structures, batch 4: 5 steps per epoch; 8 steps cross an epoch boundary.
    # With at most 20 atoms per batch (two ethanols) an epoch is 10 steps, and the run
    # resumes in the middle of one. GradNorm, EMA, the variational latent, Jacobian and
    # KL terms all carry state; so do the denoising readout and its noise.
    sections = dict(training={"max_steps": 8, "checkpoint_every": 2, "validate_every": 3,
                              "batch_atoms": batch_atoms, "position_noise": position_noise},
                    loss={"balancing": "gradnorm"})
    uninterrupted = train(tiny_config(tmp_path / "whole", data_path, **sections),
                          progress=False)

    original_update = ExponentialMovingAverage.update

    def crash_in_step_7(self, model):
        if self.updates == 6:
            raise KeyboardInterrupt("killed")
        original_update(self, model)

    interrupted_config = tiny_config(tmp_path / "interrupted", data_path, **sections)
    monkeypatch.setattr(ExponentialMovingAverage, "update", crash_in_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted_config, progress=False)
    monkeypatch.setattr(ExponentialMovingAverage, "update", original_update)
    assert safe_torch_load(tmp_path / "interrupted" / "checkpoint.pt")["progress"]["step"] == 6
    resumed = train(interrupted_config, resume=True, progress=False)

    assert resumed.steps == uninterrupted.steps == 8
    assert resumed.epochs == uninterrupted.epochs == (2 if batch_atoms is None else 1)
    expected = parameters_of(tmp_path / "whole" / "checkpoint.pt")
    actual = parameters_of(tmp_path / "interrupted" / "checkpoint.pt")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    assert resumed.metrics == uninterrupted.metrics
    # Every step is logged once, the rows of the crashed session after step 6 are gone.
    assert [int(r["step"]) for r in read_csv(tmp_path / "interrupted" / "metrics.csv")] \
        == list(range(1, 9))
    whole = read_csv(tmp_path / "whole" / "metrics.csv")
    again = read_csv(tmp_path / "interrupted" / "metrics.csv")
    assert [r["loss_forces"] for r in whole] == [r["loss_forces"] for r in again]


def nan_energy_from(monkeypatch, first: int, last: float = float("inf")):
    """The energy of training forward passes number ``first`` to ``last`` (1-based) is NaN."""
    original_forward = TriDFTModel.forward
    calls = {"training": 0}

    def forward(self, batch, forces="direct"):
        outputs = original_forward(self, batch, forces)
        if self.training:
            calls["training"] += 1
            if first <= calls["training"] <= last:
                outputs["energy"] = outputs["energy"] * float("nan")
        return outputs

    monkeypatch.setattr(TriDFTModel, "forward", forward)


def test_a_non_finite_loss_rolls_back_to_the_checkpoint_with_half_the_lr(tmp_path, data_path,
                                                                       monkeypatch, caplog):
    clean = train(tiny_config(tmp_path / "clean", data_path), progress=False)
    nan_energy_from(monkeypatch, first=4, last=4)  # the forward pass of step 3 (from 0)
    result = train(tiny_config(tmp_path / "run", data_path), progress=False)
    assert result.steps == 6 and result.stopped_because == "max_steps"
    assert "step 3: non-finite training loss (loss_energy = nan" in caplog.text
    assert "back to the checkpoint of step 2 with the learning rate x 0.5" in caplog.text
    progress = safe_torch_load(tmp_path / "run" / "checkpoint.pt")["progress"]
    assert progress["rollbacks"] == 1 and progress["lr_scale"] == 0.5
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 7))  # every step logged once
    clean_rows = read_csv(clean.run_dir / "metrics.csv")
    assert float(rows[1]["lr"]) == float(clean_rows[1]["lr"])  # before the roll-back
    assert float(rows[-1]["lr"]) == pytest.approx(0.5 * float(clean_rows[-1]["lr"]), rel=1e-5)


def test_a_loss_that_stays_non_finite_stops_after_three_rollbacks(tmp_path, data_path,
                                                                  monkeypatch):
    nan_energy_from(monkeypatch, first=4)
    with pytest.raises(TriDFTError) as error:
        train(tiny_config(tmp_path / "run", data_path), progress=False)
    message = str(error.value)
    assert message.startswith("step 2: non-finite training loss (loss_energy = nan")
    assert "after 3 roll-backs with a halved learning rate" in message
    assert f"{tmp_path / 'run' / 'checkpoint.pt'} (step 2)" in message
    assert "\n" not in message


def test_a_non_finite_loss_before_any_checkpoint_stops(tmp_path, data_path, monkeypatch):
    nan_energy_from(monkeypatch, first=2)
    with pytest.raises(TriDFTError, match=r"^step 1: non-finite training loss .*no checkpoint "
                                          r"was written yet"):
        train(tiny_config(tmp_path / "run", data_path), progress=False)


def test_time_limit_and_early_stopping_stop_cleanly(tmp_path, data_path):
    result = train(tiny_config(tmp_path / "timed", data_path,
                               training={"max_steps": None, "time_limit_minutes": 1e-9}),
                   progress=False)
    assert result.stopped_because == "time_limit"  # reached before the first step
    assert load_model(result.best_model_path) is not None
    result = train(tiny_config(tmp_path / "patient", data_path,
                               training={"max_steps": 1000, "validate_every": 1,
                                         "early_stopping_patience": 1, "lr": 1e-9,
                                         "warmup_steps": 0}),
                   progress=False)
    assert result.stopped_because == "early_stopping" and result.steps < 1000


def test_the_core_repulsion_starts_at_the_shortest_training_distances(tmp_path, data_path):
    train(tiny_config(tmp_path / "run", data_path), progress=False)
    model = load_model(tmp_path / "run" / "model.pt")
    shortest = model.metadata["domain"]["min_distance"]  # of the training split
    for pair, (a, b) in {"1-6": (1, 6), "6-8": (6, 8), "1-1": (1, 1)}.items():
        assert float(model.repulsion.onsets[a, b]) == pytest.approx(shortest[pair], rel=1e-6)
        assert float(model.repulsion.onsets[b, a]) == float(model.repulsion.onsets[a, b])
    assert 0.9 < float(model.repulsion.onsets[1, 6]) < 1.1  # a C-H bond, Angstrom
