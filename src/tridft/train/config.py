"""Typed training configuration, read from YAML and validated before anything runs.

A run is described by one YAML file with five sections::

    data:      where the structures come from and how they are split
    model:     the architecture (tridft.model.config.ModelConfig)
    training:  optimisation: batch size, limits, learning rate, EMA, checkpoints, ...
    loss:      which losses, their weights, regularizers and loss balancing
    run_dir:   where everything the run writes goes

Every section forbids unknown keys, so a typo is an error that names the key::

    >>> config_from_dict({"training": {"lr": "fast"}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tridft.errors.ConfigError: training.lr: Input should be a valid number...

The defaults train a useful ethanol model in a few minutes on two CPU cores
(see docs/training.md for how they were chosen).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from tridft.errors import ConfigError, InputError
from tridft.model.config import ModelConfig, NoBooleanNumbers


class _Section(NoBooleanNumbers):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Section):
    """How the training file is split when no separate validation/test files are given.

    A number below 1 is a fraction of the structures, 1 or more a count.
    """

    validation: float = Field(0.1, ge=0)
    test: float = Field(0.1, ge=0)
    seed: int = 0


# Kinds of head for an extra label (data.keys extra.NAME), see tridft.train.tasks.
ExtraKind = Literal["structure_scalar", "structure_scalar_mean", "structure_vector",
                    "structure_tensor", "atom_scalar"]


class DataConfig(_Section):
    """The structures to train on (internal units after reading, see data/io.py)."""

    train: str | None = Field(None, description="file with the training structures; "
                                                "null: the bundled ethanol dataset")
    validation: str | None = Field(None, description="separate validation file (else split)")
    test: str | None = Field(None, description="separate test file (else split)")
    keys: dict[str, str | None] = Field(default_factory=dict,
                                        description="label -> key in the file, as --keys")
    units: dict[str, str] = Field(default_factory=dict,
                                  description="quantity -> unit of the file, as --units")
    kinds: dict[str, ExtraKind] = Field(
        default_factory=dict, description="extra label -> the kind of its head (see "
                                          "tridft.train.tasks); inferred from its shape if "
                                          "unambiguous")
    reference_energies: dict[str, float] | None = Field(
        None, description="isolated-atom energies {symbol: eV}, or a YAML/JSON file of "
                          "them (tridft label --isolated-atoms writes one), instead of "
                          "fitted per-element references (see tridft.data.references)")
    split: SplitConfig = Field(default_factory=SplitConfig)
    max_structures: int | None = Field(None, gt=0, description="read at most this many "
                                                               "structures of the train file")

    @field_validator("reference_energies", mode="before")
    @classmethod
    def _read_file(cls, energies):
        if isinstance(energies, (str, os.PathLike)):
            from tridft.data.references import read_reference_energies

            try:
                return read_reference_energies(energies)
            except InputError as error:
                raise ValueError(str(error)) from None
        return energies

    @field_validator("reference_energies")
    @classmethod
    def _elements_are_known(cls, energies: dict[str, float] | None):
        from tridft.data.references import atomic_number

        for key, value in (energies or {}).items():
            try:
                atomic_number(key, "")
            except ConfigError:
                raise ValueError(f"{key}: not an element symbol") from None
            if not math.isfinite(value):
                raise ValueError(f"{key}: the energy must be a finite number")
        return energies


class TrainingConfig(_Section):
    """The optimisation. Steps are optimizer steps (one global batch each)."""

    batch_size: int = Field(8, gt=0, description="structures per global batch")
    batch_atoms: int | None = Field(
        512, gt=0, description="at most this many atoms per global batch (at least one "
                               "structure per process); null: no cap. Binds only for "
                               "large structures: 16 ethanols are 144 atoms, 16 "
                               "water cells of 192 atoms would be 3072")
    max_epochs: int | None = Field(None, gt=0)
    max_steps: int | None = Field(3000, gt=0)
    time_limit_minutes: float | None = Field(None, gt=0,
                                             description="stop cleanly after this wall time")
    lr: float = Field(5e-3, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.0, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_steps: int = Field(50, ge=0, description="linear learning-rate warm-up")
    min_lr_ratio: float = Field(0.02, ge=0, le=1,
                                description="cosine ends at (plateau stops at) lr * this")
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = Field(3, ge=1, description="validations without improvement")
    grad_clip: float | None = Field(10.0, gt=0, description="max global gradient norm")
    grad_spike_factor: float | None = Field(
        10.0, gt=1, description="clip a gradient norm above this many times the running "
                                "average of recent norms down to it (train/spikes.py); "
                                "null: off")
    ema_decay: float = Field(0.99, ge=0, lt=1, description="0 switches EMA off")
    position_noise: float = Field(
        0.0, ge=0, description="Angstrom: also pass a copy of every training batch with "
                               "atoms displaced by Gaussian noise of this width, and learn "
                               "to undo it from the latent (loss.denoising_weight; "
                               "train/denoising.py); 0: off")
    consistency_noise: float = Field(
        0.0, ge=0, description="Angstrom: also apply the Jacobian term (loss.jacobian_weight) "
                               "to a copy of every training batch with atoms displaced by "
                               "Gaussian noise of this width (train/displaced.py); 0: off")
    early_stopping_patience: int | None = Field(None, ge=1,
                                                description="validations without improvement")
    validate_every: int = Field(250, gt=0, description="steps")
    checkpoint_every: int = Field(250, gt=0, description="steps")
    log_every: int = Field(20, gt=0, description="steps")
    gradient_cosine_every: int | None = Field(250, gt=0,
                                              description="steps; null: never")
    seed: int = 0
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    force_source: Literal["direct", "conservative"] = Field(
        "direct", description="which forces the force loss supervises")
    # One thread by default: on two cores a second thread gains ~20% when the machine is
    # idle, but makes steps 10-50x slower whenever another process wants a core.
    num_threads: int | None = Field(1, gt=0, description="torch CPU threads; null: torch's "
                                                          "default (one per core)")

    @model_validator(mode="after")
    def _some_limit(self) -> "TrainingConfig":
        if self.max_epochs is None and self.max_steps is None and self.time_limit_minutes is None:
            raise ValueError("set at least one of max_epochs, max_steps, time_limit_minutes")
        return self


class LossConfig(_Section):
    """Per-task losses on normalised residuals, regularizers and loss balancing."""

    kind: Literal["mse", "huber"] = "mse"
    huber_delta: float = Field(1.0, gt=0, description="in units of the task's scale")
    weights: dict[str, float] = Field(
        default_factory=lambda: {"energy": 0.1, "forces": 10.0, "conservative_forces": 10.0,
                                 "polarizability": 2.0},
        description="task (head name) -> weight; a label of the data not listed is "
                    "trained with its default weight, 0 leaves it out (train/tasks.py)")
    jacobian_weight: float = Field(2.0, ge=0, description="|F_direct + dE/dR|^2 / forces_rms^2")
    jacobian_warmup_steps: int = Field(0, ge=0)
    jacobian_pulls: Literal["both", "direct_head"] = Field(
        "both", description="what the Jacobian term moves: both force estimates towards "
                            "each other, or only the direct head towards -dE/dR")
    conservative_every: int = Field(
        1, ge=1, description="compute -dE/dR (its force loss and the Jacobian term) on every "
                             "k-th step only; the steps between skip the double backward")
    kl_beta: float = Field(1e-4, ge=0, description="weight of the latent KL (nats per atom)")
    kl_warmup_steps: int = Field(500, ge=0)
    denoising_weight: float = Field(0.01, ge=0, description="weight of the denoising loss "
                                    "when training.position_noise > 0 (mean squared error "
                                    "of the unit-variance displacement)")
    balancing: Literal["fixed", "uncertainty", "gradnorm"] = "fixed"
    gradnorm_alpha: float = Field(1.5, ge=0)
    gradnorm_lr: float = Field(0.01, gt=0, description="learning rate of the GradNorm weights")
    pcgrad: bool = Field(False, description="project conflicting task gradients (shared part)")

    @field_validator("weights")
    @classmethod
    def _weights_are_valid(cls, weights: dict[str, float]) -> dict[str, float]:
        for task, weight in weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"the weight of '{task}' must be a finite number >= 0")
        if not any(weight > 0 for weight in weights.values()):
            raise ValueError("at least one task needs a positive weight")
        return weights

    def tasks(self) -> list[str]:
        """The supervised tasks: those with a positive weight, sorted by name (the order
        of the balancer's state, which must not depend on how the YAML was written)."""
        return sorted(task for task, weight in self.weights.items() if weight > 0)


class TrainConfig(_Section):
    """Everything a training run needs."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    run_dir: str = "runs/ethanol"

    def to_yaml(self) -> str:
        """The resolved configuration as YAML (every default written out)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def config_from_dict(values: dict | None, overrides: list[str] | None = None,
                     source: str | None = None) -> TrainConfig:
    """A validated TrainConfig from a plain dict plus ``key.path=value`` overrides.

    Overrides apply to the resolved configuration, so ``loss.weights.dipole=0.5``
    adds a task to the default weights instead of replacing them.
    """
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ConfigError(_where(source) + "the configuration must be a mapping of sections")
    config = _validate(values, _where(source))
    if overrides:
        resolved = config.model_dump(mode="json")
        for override in overrides:
            apply_override(resolved, override)
        config = _validate(resolved, "--set ")
    return config


def _validate(values: dict, where: str) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        raise ConfigError(where + _first_problem(error)) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (YAML; None: all defaults) and apply ``--set key.path=value`` overrides.

    Raises ConfigError with a one-line message naming the file and key.
    """
    values: Any = {}
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a configuration file")
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path}: {line}not valid YAML ({problem})") from None
    return config_from_dict(values, overrides, source=str(path) if path is not None else None)


def apply_override(values: dict, override: str) -> None:
    """Set ``values[a][b][c] = yaml(v)`` for the override ``"a.b.c=v"`` (in place).

    >>> values = {"training": {"lr": 0.1}}
    >>> apply_override(values, "training.lr=1.0e-3"); values
    {'training': {'lr': 0.001}}
    """
    key_path, sep, text = override.partition("=")
    key_path = key_path.strip()
    if not sep or not key_path:
        raise ConfigError(f"--set: expected key.path=value, got '{override}'")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key_path}: cannot parse the value '{text}'") from None
    keys = key_path.split(".")
    node = values
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key_path}: '{'.'.join(keys[:depth + 1])}' "
                              f"is a value, not a section")
        node = child
    node[keys[-1]] = value


def _first_problem(error: ValidationError) -> str:
    """'training.lr: Input should be a valid number' for the first error pydantic found."""
    problem = error.errors()[0]
    location = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        message = "unknown key"
    else:
        message = problem["msg"].removeprefix("Value error, ")
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{location}: {message}{suffix}" if location else f"{message}{suffix}"


def _where(source: str | None) -> str:
    return f"{source}: " if source else ""
