"""Figures of a model's quality, written as PNG files.

- ``parity_plots``: predicted against reference, one panel per property, MAE in the title;
- ``error_histograms``: the distribution of prediction errors, one panel per property;
- ``learning_curves``: training loss terms and validation MAEs against the step (log scale);
- ``gradient_cosines``: the cosine between task gradients on the shared parameters.

The first two take the comparisons of ``tridft.train.evaluate.predictions_and_targets``,
the last two the ``metrics.csv`` (and ``validation.csv``) a training run writes. Figures are drawn on
matplotlib's Agg canvas directly (no pyplot, no display) and every file is written
atomically. matplotlib (the ``plot`` extra) is imported only when a figure is drawn.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from tridft.extras import require_matplotlib
from tridft.files import atomic_output
from tridft.train.evaluate import Comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Comparison key -> (axis label, unit), in the order the panels appear.
PARITY_QUANTITIES = {
    "energy_per_atom": ("energy per atom", "eV/atom"),
    "forces": ("force components", "eV/A"),
    "polarizability": ("polarizability components", "A^3"),
    "dipole": ("dipole components", "e*A"),
}
DPI = 110

# Columns of a run's logs (see tridft.train.loop): metrics.csv has the step, loss terms
# (loss_*, reg_*) and gradient cosines (cos_A|B); validation.csv the step and metrics.
STEP_COLUMN = "step"
COSINE_PREFIX = "cos_"


def _panels(count: int, size: float = 3.6) -> tuple[Figure, list]:
    require_matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size * count, size), layout="constrained")
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` to ``path`` as PNG, atomically."""
    path = Path(path)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return path


def _known(pairs: Mapping[str, Comparison]) -> list[str]:
    return [name for name in PARITY_QUANTITIES if name in pairs and pairs[name].target.size]


def parity_plots(pairs: Mapping[str, Comparison], path: str | os.PathLike) -> Path | None:
    """Predicted against reference for every property in ``pairs``; None when there is none."""
    return _panel_per_property(pairs, path, _draw_parity)


def error_histograms(pairs: Mapping[str, Comparison], path: str | os.PathLike) -> Path | None:
    """Histograms of predicted - reference for every property in ``pairs``."""
    return _panel_per_property(pairs, path, _draw_error_histogram)


def _panel_per_property(pairs: Mapping[str, Comparison], path: str | os.PathLike,
                        draw) -> Path | None:
    """One panel a property of ``pairs``, drawn by ``draw(axis, comparison, label, unit)``."""
    names = _known(pairs)
    if not names:
        return None
    figure, axes = _panels(len(names))
    for axis, name in zip(axes, names):
        draw(axis, pairs[name], *PARITY_QUANTITIES[name])
    return save_figure(figure, path)


def _draw_parity(axis, pair: Comparison, label: str, unit: str) -> None:
    target = pair.target.ravel()
    predicted = pair.predicted.ravel()
    low, high = _limits(target, predicted)
    axis.plot([low, high], [low, high], color="0.6", linewidth=1, zorder=0)
    axis.scatter(target, predicted, s=4, alpha=0.5, linewidths=0, rasterized=True)
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    axis.set_aspect("equal")
    axis.ticklabel_format(useOffset=False)  # an offset label would hide the axis label
    axis.set_xlabel(f"reference {label} ({unit})")
    axis.set_ylabel(f"predicted ({unit})")
    axis.set_title(f"{label}\nMAE {pair.mae():.3g} {unit}", fontsize=10)


def _limits(*arrays: np.ndarray) -> tuple[float, float]:
    values = np.concatenate([a.ravel() for a in arrays])
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) or 0.5 * max(abs(high), 1e-12)
    return low - margin, high + margin


def _draw_error_histogram(axis, pair: Comparison, label: str, unit: str) -> None:
    errors = pair.errors.ravel()
    axis.hist(errors, bins=min(60, max(10, errors.size // 10)), color="C1")
    axis.axvline(0.0, color="0.3", linewidth=1)
    axis.set_xlabel(f"error in {label} ({unit})")
    axis.set_ylabel("count")
    rmse = float(np.sqrt(np.mean(errors**2)))
    axis.set_title(f"{label}\nRMSE {rmse:.3g} {unit}", fontsize=10)


# --- training curves from metrics.csv -----------------------------------------------------


def read_metrics_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Columns of a training run's metrics.csv as float arrays; blank or non-numeric cells are NaN."""
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        return {}
    return {name: np.array([_number(row.get(name)) for row in rows]) for name in rows[0]}


def _number(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _plot_columns(axis, table: dict[str, np.ndarray], names: list[str], log: bool) -> bool:
    """Draw each column against the step, skipping NaN; whether anything was drawn."""
    steps = table[STEP_COLUMN]
    drawn = False
    for name in names:
        values = table[name]
        keep = np.isfinite(values) & np.isfinite(steps)
        if log:
            keep &= values > 0
        if keep.any():
            axis.plot(steps[keep], values[keep], label=name, linewidth=1.2,
                      marker="." if keep.sum() < 30 else None)
            drawn = True
    if drawn:
        if log:
            axis.set_yscale("log")
        axis.legend(fontsize=7)
    axis.set_xlabel("step")
    return drawn


def loss_columns(table: Mapping[str, np.ndarray]) -> list[str]:
    """Training loss terms and regularizers: loss_total, loss_<task>, reg_<name>."""
    return [n for n in table if n == "loss" or n.startswith(("loss_", "reg_"))]


def validation_mae_columns(table: Mapping[str, np.ndarray]) -> list[str]:
    """MAE columns of validation.csv."""
    return [n for n in table if n.endswith("_mae")]


def cosine_columns(table: Mapping[str, np.ndarray]) -> list[str]:
    return [n for n in table if n.startswith(COSINE_PREFIX)]


def learning_curves(metrics_csv: str | os.PathLike, path: str | os.PathLike,
                    validation_csv: str | os.PathLike | None = None) -> Path | None:
    """Training loss terms (metrics.csv) and validation MAEs (validation.csv) against the
    step, on log scales; None when there is nothing to draw."""
    table = read_metrics_csv(metrics_csv)
    validation = read_metrics_csv(validation_csv) \
        if validation_csv is not None and Path(validation_csv).is_file() else {}
    if STEP_COLUMN not in table:
        return None
    figure, (train_axis, validation_axis) = _panels(2, size=4.8)
    drawn = _plot_columns(train_axis, table, loss_columns(table), log=True)
    train_axis.set_title("training loss terms (normalised)", fontsize=10)
    if STEP_COLUMN in validation:
        drawn |= _plot_columns(validation_axis, validation, validation_mae_columns(validation),
                               log=True)
    validation_axis.set_title("validation MAE (eV, eV/A, A^3)", fontsize=10)
    return save_figure(figure, path) if drawn else None


def gradient_cosines(metrics_csv: str | os.PathLike, path: str | os.PathLike) -> Path | None:
    """Cosine between task gradients on the shared parameters against the step."""
    table = read_metrics_csv(metrics_csv)
    if STEP_COLUMN not in table:
        return None
    figure, (axis,) = _panels(1, size=4.8)
    axis.axhline(0.0, color="0.6", linewidth=1, zorder=0)
    drawn = _plot_columns(axis, table, cosine_columns(table), log=False)
    axis.set_ylim(-1.05, 1.05)
    axis.set_ylabel("cosine of task gradients")
    axis.set_title("task gradient alignment (< 0: the tasks pull apart)", fontsize=10)
    return save_figure(figure, path) if drawn else None


def write_plots(folder: str | os.PathLike, pairs: Mapping[str, Comparison] | None = None,
                metrics_csv: str | os.PathLike | None = None,
                validation_csv: str | os.PathLike | None = None) -> dict[str, Path]:
    """Every figure there is data for, in ``folder``: {title: path}."""
    folder = Path(folder)
    made: dict[str, Path | None] = {}
    if pairs:
        made["parity plots"] = parity_plots(pairs, folder / "parity.png")
        made["error histograms"] = error_histograms(pairs, folder / "errors.png")
    if metrics_csv is not None and Path(metrics_csv).is_file():
        made["learning curves"] = learning_curves(metrics_csv, folder / "learning_curves.png",
                                                  validation_csv)
        made["gradient cosines"] = gradient_cosines(metrics_csv,
                                                    folder / "gradient_cosines.png")
    return {title: path for title, path in made.items() if path is not None}
