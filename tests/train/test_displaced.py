"""The Jacobian term on displaced copies: what it compares, and a run that uses it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.physics.helpers import ethanol, perturbed_model
from tridft.data.batch import collate
from tridft.model.jacobian import jacobian_penalty
from tridft.train.displaced import DisplacedConsistency, displaced_consistency_for
from tridft.train.loop import train

from .test_loop import read_csv
from .tiny import tiny_config, write_ethanol_subset


def test_the_term_compares_the_heads_on_a_displaced_copy():
    model = perturbed_model().train()  # as in training: -dE/dR keeps its graph
    batch = collate([ethanol(k) for k in range(3)], model.cutoff, dtype=torch.float64)
    term = DisplacedConsistency(sigma=0.05, weight=2.0, scale=1.3)
    torch.manual_seed(0)
    value = term.loss(model, batch)
    # The same noise, by hand: the heads' disagreement at the displaced positions.
    torch.manual_seed(0)
    noise = torch.randn_like(batch.positions)
    moved = model(replace(batch, positions=batch.positions + 0.05 * noise), forces="both")
    expected = jacobian_penalty(moved["forces"], moved["conservative_forces"], 1.3)
    torch.testing.assert_close(value, expected)
    unmoved = model(batch, forces="both")
    assert float(value) != pytest.approx(float(jacobian_penalty(
        unmoved["forces"], unmoved["conservative_forces"], 1.3)), rel=1e-3)
    value.backward()  # both heads and the backbone get gradients
    head = next(model.heads["forces"].parameters())
    assert head.grad is not None and float(head.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="positive"):
        DisplacedConsistency(sigma=0.0, weight=1.0, scale=1.0)


def test_a_run_logs_the_displaced_term(tmp_path):
    data_path = write_ethanol_subset(tmp_path / "ethanol16.extxyz", 16)
    config = tiny_config(tmp_path / "run", data_path,
                         training={"consistency_noise": 0.02, "max_steps": 4})
    result = train(config, progress=False)
    assert result.steps == 4
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert rows and all(float(row["reg_jacobian_displaced"]) > 0 for row in rows)


def test_an_inert_setting_says_so(caplog):
    with caplog.at_level("WARNING", logger="tridft.train.displaced"):
        assert displaced_consistency_for(0.02, 0.0, 1.0, trains_minus_dE_dR=True) is None
        assert displaced_consistency_for(0.02, 2.0, 1.0, trains_minus_dE_dR=False) is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "jacobian_weight is 0" in messages[0] and "no -dE/dR" in messages[1]
    caplog.clear()
    with caplog.at_level("WARNING", logger="tridft.train.displaced"):
        assert displaced_consistency_for(0.0, 0.0, 1.0, trains_minus_dE_dR=False) is None
        term = displaced_consistency_for(0.02, 2.0, 1.3, trains_minus_dE_dR=True)
    assert not caplog.records  # off, or on and working: nothing to say
    assert (term.sigma, term.weight, term.scale) == (0.02, 2.0, 1.3)
