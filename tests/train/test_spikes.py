"""A step with an outlier gradient is clipped to the recent typical norm, not applied whole."""

from __future__ import annotations

import csv

import pytest

import tridft.train.loop as loop
from tests.train.tiny import tiny_config, write_ethanol_subset

SPIKE_STEP = 12


def with_a_spike_at(step_of_spike: int, factor: float):
    """build_objective whose losses are ``factor`` times larger at one step: an outlier
    batch, whatever its cause (a mislabelled structure, a transient instability)."""
    original = loop.build_objective

    def build(*args, **kwargs):
        objective = original(*args, **kwargs)
        call = objective.__call__

        class Spiking(type(objective)):
            def __call__(self, outputs, batch, step, **options):
                losses = call(outputs, batch, step, **options)
                if step == step_of_spike:
                    losses.tasks = {task: loss * factor for task, loss in losses.tasks.items()}
                return losses

        objective.__class__ = Spiking
        return objective

    return build


def run(tmp_path, monkeypatch, spike_factor):
    monkeypatch.setattr(loop, "build_objective", with_a_spike_at(SPIKE_STEP, 1e6))
    data = write_ethanol_subset(tmp_path / "ethanol.extxyz", 24)
    run_dir = tmp_path / f"run-{spike_factor}"
    config = tiny_config(run_dir, data,
                         training={"max_steps": 16, "warmup_steps": 4, "log_every": 1,
                                   "grad_spike_factor": spike_factor, "grad_clip": None})
    loop.train(config, progress=False)
    with open(run_dir / "metrics.csv", newline="") as stream:
        return {int(row["step"]): row for row in csv.DictReader(stream)}


@pytest.mark.parametrize("spike_factor", [10.0, None])
def test_a_spike_is_clipped_only_when_the_guard_is_on(tmp_path, monkeypatch, spike_factor):
    rows = run(tmp_path, monkeypatch, spike_factor)
    spike = rows[SPIKE_STEP + 1]  # the row logged after step SPIKE_STEP (0-based) ran
    before = [float(rows[s]["grad_norm"]) for s in range(1, SPIKE_STEP + 1)]
    assert float(spike["grad_norm"]) > 1e3 * max(before)
    clipped = [s for s, row in rows.items() if float(row["spikes_clipped"])]
    assert clipped == ([SPIKE_STEP + 1] if spike_factor else [])
