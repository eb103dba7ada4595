"""One training run of a benchmark grid: tridft's own trainer, then the clean test set.

Every run trains under a configuration that differs from the benchmark's base
settings only by the run's overrides, and is evaluated with its best
(validation-selected) model.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Sequence

from ethanol_split import Benchmark, write_extxyz

from tridft.data.record import Record
from tridft.train.config import config_from_dict
from tridft.train.loop import train

# The base of every benchmark run: tridft's training defaults (TRAINING_MODEL_DEFAULTS:
# 32 features, 3 layers, latent 16 scalars + 8 vectors) with a fixed number of steps,
# so that the variants of a grid do the same amount of optimisation and their train
# time is a result. 500 steps of 16 structures (~12 epochs of 650) is short: chosen so
# that ~50 runs fit in about an hour on two shared cores (60-100 s per run); the
# models are far from converged, and every comparison is at this equal budget.
BASE_SETTINGS: dict = {
    "training": {"max_steps": 500, "batch_size": 16, "validate_every": 50,
                 "checkpoint_every": 100000, "log_every": 100,
                 "gradient_cosine_every": None, "num_threads": 1},
}
# --quick: a few steps on a few structures, the same code paths and JSON schema.
QUICK_SETTINGS: dict = {
    "model": {"features": 8, "layers": 1, "head_hidden": 8, "latent_scalars": 4,
              "latent_vectors": 2, "polarizability_channels": 2},
    "training": {"max_steps": 6, "batch_size": 4, "validate_every": 3, "warmup_steps": 1,
                 "checkpoint_every": 100000, "log_every": 3, "gradient_cosine_every": None,
                 "num_threads": 1},
    "loss": {"kl_warmup_steps": 1},
}

TASKS = ("energy", "forces", "polarizability")


def merge(base: dict, overrides: dict) -> dict:
    """Nested dict merge: ``overrides`` wins; dicts are merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def train_and_test(train_records: Sequence[Record], data: Benchmark, overrides: dict,
                   seed: int, workdir: Path) -> dict:
    """Train on ``train_records`` with the benchmark settings + ``overrides``; test metrics.

    Returns the test metrics of tridft.train.evaluate (energy_mae eV, forces_mae eV/A,
    polarizability_mae A^3, jacobian_consistency_mae eV/A, ...) plus train_time_s
    (the trainer's wall time), train_cpu_s (CPU time of training and testing), steps,
    epochs and n_train.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    files = {name: workdir / f"{name}.extxyz" for name in ("train", "validation", "test")}
    write_extxyz(train_records, files["train"])
    write_extxyz(data.validation, files["validation"])
    write_extxyz(data.test, files["test"])
    settings = merge(QUICK_SETTINGS if data.quick else BASE_SETTINGS, overrides)
    settings = merge(settings, {
        "data": {"train": str(files["train"]), "validation": str(files["validation"]),
                 "test": str(files["test"])},
        "training": {"seed": seed},
        "run_dir": str(workdir / "run"),
    })
    config = config_from_dict(settings)
    # CPU seconds of this process (one torch thread): unlike the wall time, hardly
    # changed by other processes competing for the shared cores.
    cpu_started = time.process_time()
    result = train(config, progress=False)
    train_cpu_s = time.process_time() - cpu_started
    metrics = {key: value for key, value in result.test_metrics.items()
               if isinstance(value, (int, float))}
    return {**metrics, "train_time_s": result.elapsed_s, "train_cpu_s": train_cpu_s,
            "steps": result.steps,
            "epochs": result.epochs, "n_train": len(train_records),
            "stopped_because": result.stopped_because}
