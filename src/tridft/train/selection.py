"""Which model a run keeps, and the model file it writes.

:func:`validation_score` ranks validated models (lower is better); the best one is
saved with :func:`model_metadata` (statistics, split, units, configuration, a
summary), and :func:`finish_model_file` adds how the run ended and the
uncertainty calibration.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tridft.data.stats import DatasetStats
from tridft.errors import InputError
from tridft.model.persistence import save_model
from tridft.train import checkpoint as ckpt
from tridft.train.config import TrainConfig
from tridft.train.run_data import RunData

logger = logging.getLogger(__name__)

MODEL_NAME = "model.pt"
INTERNAL_UNITS = {"energy": "eV", "length": "Angstrom", "forces": "eV/Angstrom",
                  "polarizability": "Angstrom^3", "dipole": "e*Angstrom"}


def validation_score(metrics: dict, stats: DatasetStats, weights: dict[str, float],
                     extra_scales: dict[str, float], mean_atoms: float = 1.0) -> float:
    """sum over tasks of weight * MAE / scale: dimensionless, lower is better.

    The scales are those of the loss (per atom for energy and polarizability), so
    each task counts as much as it does in training with fixed weights.
    """
    scaled = {
        "energy": (metrics.get("energy_mae_per_atom"), stats.energy_per_atom_scale),
        "forces": (metrics.get("forces_mae"), stats.forces_rms),
        "conservative_forces": (metrics.get("conservative_forces_mae"), stats.forces_rms),
        "polarizability": (metrics.get("polarizability_mae"),
                           stats.polarizability_scale * mean_atoms),
        "dipole": (metrics.get("dipole_mae"), stats.dipole_scale),
    }
    score = 0.0
    for task, weight in weights.items():
        mae, scale = scaled.get(task, (metrics.get(f"{task}_mae"), extra_scales.get(task, 1.0)))
        if weight > 0 and mae is not None:
            score += weight * mae / scale
    return score


def run_summary(state: ckpt.TrainingProgress, metrics: dict, config: TrainConfig,
             stopped_because: str) -> dict:
    return {"step": state.step, "epoch": state.epoch, "elapsed_s": round(state.elapsed_s, 1),
            "validation_metrics": {k: float(v) for k, v in metrics.items()},
            "force_source": config.training.force_source, "stopped_because": stopped_because}


def model_metadata(data: RunData, config: TrainConfig, summary: dict) -> dict:
    """Plain data saved with the model: statistics, split, units, configuration, summary."""
    return {"stats": data.stats.to_dict(), "split": data.splits.to_dict(),
            "data": dict(data.sources), "units": dict(INTERNAL_UNITS),
            "config": config.model_dump(mode="json"), "training": summary,
            **({"tasks": data.plan.to_dict()} if data.plan is not None else {}),
            **({"domain": data.domain.to_dict()} if data.domain is not None else {})}


def finish_model_file(path: Path, data: RunData, config: TrainConfig,
                       state: ckpt.TrainingProgress, stopped_because: str) -> None:
    """Add how the run ended to the saved model's training summary, and calibrate its
    uncertainty on the training and validation splits."""
    from tridft.model.persistence import load_model

    model = load_model(path)
    model.uncertainty = _calibrated_uncertainty(model, data)
    summary = dict(model.metadata.get("training", {}))
    summary.update({"total_steps": state.step, "total_elapsed_s": round(state.elapsed_s, 1),
                    "best_step": state.best_step, "stopped_because": stopped_because})
    save_model(model, path, metadata={**model.metadata, "training": summary})


def _calibrated_uncertainty(model, data: RunData):
    """The model's LLPR fitted on the run's splits (tridft.uncertainty), or None."""
    from tridft.uncertainty.calibrate import fit_uncertainty

    if not data.validation:
        logger.warning("no validation structures: the model gets no uncertainty calibration")
        return None
    try:
        return fit_uncertainty(model, data.train.records, data.validation)
    except InputError as error:
        logger.warning("no uncertainty calibration: %s", error)
        return None
