"""Figures are real PNG files, written whole, and only when there is something to draw."""

from __future__ import annotations

import numpy as np
import pytest

from tridft.report.plots import (error_histograms, gradient_cosines, learning_curves,
                                 loss_columns, parity_plots, read_metrics_csv,
                                 validation_mae_columns, write_plots)
from tridft.train.evaluate import Comparison

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    target = {"energy_per_atom": rng.normal(size=20), "forces": rng.normal(size=(50, 3)),
              "polarizability": rng.normal(size=(20, 3, 3))}
    return {name: Comparison(value + 0.1 * rng.normal(size=value.shape), value)
            for name, value in target.items()}


# The logs a training run writes (tridft.train.loop): validation has its own file and
# steps; cosines are logged only on some steps.
METRICS_CSV = """step,epoch,time_s,lr,loss_total,loss_energy,loss_forces,reg_jacobian,grad_norm,cos_energy|forces
10,0,1.0,0.001,2.0,1.5,0.5,0.01,3.0,0.3
20,0,2.0,0.001,1.0,0.7,0.3,0.008,2.0,
30,1,3.0,0.0009,0.5,0.3,0.2,0.005,1.5,-0.2
40,1,4.0,0.0008,0.4,0.25,0.15,0.004,1.2,
"""
VALIDATION_CSV = """step,epoch,score,n_structures,energy_mae,forces_mae,jacobian_consistency_mae
20,0,1.0,8,0.2,0.4,0.05
40,1,0.5,8,0.1,0.3,0.04
"""


@pytest.fixture
def metrics_csv(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(METRICS_CSV)
    (tmp_path / "validation.csv").write_text(VALIDATION_CSV)
    return path


def test_parity_and_histograms_are_png(pairs, tmp_path):
    assert is_png(parity_plots(pairs, tmp_path / "parity.png"))
    assert is_png(error_histograms(pairs, tmp_path / "errors.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.png", "parity.png"]


def test_nothing_to_draw_writes_nothing(tmp_path):
    assert parity_plots({}, tmp_path / "parity.png") is None
    (tmp_path / "metrics.csv").write_text("step,loss\n10,1.0\n")
    assert gradient_cosines(tmp_path / "metrics.csv", tmp_path / "cos.png") is None
    assert not (tmp_path / "cos.png").exists()


def test_blank_cells_read_as_nan(metrics_csv):
    table = read_metrics_csv(metrics_csv)
    np.testing.assert_array_equal(table["step"], [10, 20, 30, 40])
    cosines = table["cos_energy|forces"]
    assert np.isnan(cosines[[1, 3]]).all()
    np.testing.assert_allclose(cosines[[0, 2]], [0.3, -0.2])


def test_curves_pick_loss_terms_and_validation_maes(metrics_csv):
    assert loss_columns(read_metrics_csv(metrics_csv)) == [
        "loss_total", "loss_energy", "loss_forces", "reg_jacobian"]
    validation = read_metrics_csv(metrics_csv.parent / "validation.csv")
    assert validation_mae_columns(validation) == [
        "energy_mae", "forces_mae", "jacobian_consistency_mae"]


def test_training_curves_from_metrics_csv(metrics_csv, tmp_path):
    assert is_png(learning_curves(metrics_csv, tmp_path / "curves.png",
                                  metrics_csv.parent / "validation.csv"))
    assert is_png(gradient_cosines(metrics_csv, tmp_path / "cos.png"))


def test_write_plots_names_every_figure(pairs, metrics_csv, tmp_path):
    made = write_plots(tmp_path / "plots", pairs=pairs, metrics_csv=metrics_csv,
                       validation_csv=metrics_csv.parent / "validation.csv")
    assert set(made) == {"parity plots", "error histograms", "learning curves",
                         "gradient cosines"}
    assert all(is_png(path) for path in made.values())
    # Only the four figures: no temporary files left behind.
    assert len(list((tmp_path / "plots").iterdir())) == 4
