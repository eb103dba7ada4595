"""Learn a new property from a handful of labels on a trained model's latent.

    model = load_model("ethanol.pt")
    records = read_labels("dipoles.xyz", Target("dipole", "dipole"))
    result = finetune(model, records, FinetuneOptions(property="dipole", kind="dipole"))
    save_finetuned(result, "ethanol+dipole.pt")

A new head is attached to the latent and trained on the labelled structures
(which need none of the original labels). ``freeze`` names what stays fixed; the
new head always learns:

    latent    (default; also "backbone+bottleneck") everything up to the latent:
              backbone and bottleneck are frozen (requires_grad False and eval mode,
              so the latent is the bottleneck's deterministic mean) and only the new
              head learns. The original heads' predictions stay bit-identical. The
              latent of each structure is computed once and reused every step.
    backbone  only the backbone: the bottleneck learns too, at lr * pretrained_lr_factor.
    none      (also "nothing") nothing: backbone and bottleneck learn at
              lr * pretrained_lr_factor.

The aliases are read as the original names, which the model file records.

In the last two modes the shared latent moves, so the original heads' predictions
change (they are not retrained here); a warning says so.

The whole model stays in eval mode while it learns: the bottleneck gives its mean,
the value every head sees at inference. A fraction of the labelled structures is
held out for validation; the step with the lowest validation error is kept
(early stopping).

This module is the entry point (options, reading labels, checks, saving); the loop is
:mod:`tridft.transfer.head_fit` (the training package's cosine schedule and early
stopping) and the latent cache :mod:`tridft.transfer.latents`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from tridft.data.dataset import GraphDataset
from tridft.data.io import KeyMap, read_structures
from tridft.data.record import Record, unknown_elements
from tridft.errors import ConfigError, InputError
from tridft.model.model import TriDFTModel
from tridft.model.persistence import save_model
# The loop (head_fit) and the latents (latents) live beside this module; their names
# below are importable from here too.
from tridft.transfer.head_fit import (DEFAULT_STEPS, FINAL_LR_RATIO,  # noqa: F401
                                      MIN_VALIDATION_INTERVAL, RELEASED_MODULES, HeadFit,
                                      trainable)
from tridft.transfer.latents import EVALUATION_BATCH, LatentSource, evaluate_target  # noqa: F401
from tridft.transfer.targets import KINDS, Target
from tridft.units import UnitSpec

logger = logging.getLogger(__name__)

FREEZE_MODES = ("latent", "backbone", "none")
# Names of freeze modes by the modules they freeze, accepted for the original names.
FREEZE_ALIASES = {"backbone+bottleneck": "latent", "nothing": "none"}


class FinetuneOptions(BaseModel):
    """What to learn and how. Unknown or mistyped options are a ConfigError."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(min_length=1, description="name of the new head and its label")
    kind: Literal["structure_scalar", "structure_vector", "atom_scalar", "structure_tensor",
                  "dipole"]
    freeze: Literal["latent", "backbone", "none"] = Field(
        "latent", description="what stays fixed: latent (backbone and bottleneck), backbone "
                              "(the bottleneck learns) or none; FREEZE_ALIASES are accepted")
    steps: int | None = Field(None, gt=0, description="optimizer steps (default 1000)")
    epochs: int | None = Field(None, gt=0, description="passes over the training labels")
    lr: float = Field(3e-3, gt=0, description="learning rate of the new head (AdamW)")
    pretrained_lr_factor: float = Field(
        0.1, gt=0, description="the pre-trained backbone/bottleneck learn at lr * this "
                               "(freeze backbone or none)")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(16, gt=0)
    n_train: int | None = Field(None, ge=2, description="labelled structures to use "
                                                       "(training + validation); default all")
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    validate_every: int | None = Field(None, gt=0, description="steps; default one epoch, "
                                                              f"at least {MIN_VALIDATION_INTERVAL}")
    patience: int = Field(30, gt=0, description="validations without improvement before "
                                                "stopping")
    hidden: int | None = Field(None, gt=0, description="hidden width of the new head; "
                                                      "default the model's head_hidden")
    extensive: bool = Field(True, description="structure_scalar: sum (true) or mean over atoms")
    seed: int = 0

    @field_validator("freeze", mode="before")
    @classmethod
    def _original_freeze_name(cls, value):
        return FREEZE_ALIASES.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_limit(self) -> "FinetuneOptions":
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        return self

    @classmethod
    def create(cls, **values) -> "FinetuneOptions":
        """Like the constructor, with a one-line ConfigError naming the offending option."""
        try:
            return cls(**values)
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise ConfigError(f"finetune: {where + ': ' if where else ''}{problem['msg']}") \
                from None


@dataclass
class FinetuneResult:
    """The model with its new head, and how the fitting went.

    validation: {"mae", "rmse"} of the new property on the held-out labels at the
    kept step, in the property's units (components of vectors and tensors).
    initial_validation: the same for the untrained head (output scale and shift set
    from the labels), the reference the training improves on.
    history: (step, training loss, validation MAE) at every validation.
    """

    model: TriDFTModel
    target: Target
    options: FinetuneOptions
    n_train: int
    n_validation: int
    validation: dict[str, float]
    initial_validation: dict[str, float]
    best_step: int
    steps: int
    stopped_early: bool
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def summary(self) -> dict:
        """Plain data for model metadata and reports."""
        return {"property": self.target.name, "kind": self.target.kind,
                "freeze": self.options.freeze, "n_train": self.n_train,
                "n_validation": self.n_validation, "best_step": self.best_step,
                "steps": self.steps, "validation_mae": self.validation["mae"],
                "validation_rmse": self.validation["rmse"],
                "initial_validation_mae": self.initial_validation["mae"],
                "seed": self.options.seed}


# --- reading labels ----------------------------------------------------------------------


def read_labels(path: str | os.PathLike, target: Target, file_key: str | None = None,
                units: UnitSpec | None = None) -> list[Record]:
    """The structures of ``path`` that carry ``target``'s label (read from ``file_key``,
    default the property's name). Other labels are not read: the file may hold only this one.

    Dipoles are converted with ``units``; other properties are used as they are in the file.
    """
    key = file_key or target.name
    if target.kind == "dipole":
        keys = KeyMap(energy=None, forces=None, polarizability=None, dipole=key)
    else:
        keys = KeyMap(energy=None, forces=None, polarizability=None, dipole=None,
                      extra={target.name: key})
    records = target.conform(read_structures(path, keys=keys, units=units))
    if not records:
        raise InputError(f"no structure carries the label '{key}' (for property "
                         f"'{target.name}'; map another key with --keys {target.name}=KEY)",
                         path=str(path))
    return records


# --- fine-tuning -------------------------------------------------------------------------


def finetune(model: TriDFTModel, records: Sequence[Record], options: FinetuneOptions,
             progress: bool = True) -> FinetuneResult:
    """Attach a head for ``options.property`` to ``model`` (in place) and train it.

    ``records`` are the structures with the new label (see ``read_labels``); any
    others are ignored. Returns the model (with the head) and validation metrics.
    """
    target = Target(options.property, options.kind, options.extensive)
    check_new_head_name(model, target.name)
    labelled = target.conform(records)
    if target.kind == "dipole":
        _refuse_periodic(labelled)
    _warn_unknown_elements(model, labelled)
    train_records, validation_records = _split(labelled, options)

    dtype = next(model.parameters()).dtype
    dataset = GraphDataset(train_records + validation_records, model.cutoff)
    train_indices = list(range(len(train_records)))
    validation_indices = list(range(len(train_records), len(dataset)))
    dipole_scale = dataset.stats(train_indices).dipole_scale if target.kind == "dipole" else None
    head = target.build_head(train_records, model.config, options.hidden,
                             dipole_scale=dipole_scale)
    head.to(device=next(model.parameters()).device, dtype=dtype)
    model.add_head(head)
    if options.freeze != "latent":
        logger.warning("freeze=%s: the shared latent is trained, so the original heads' "
                       "predictions change; check them before using them", options.freeze)

    model.eval()  # the bottleneck's mean, as every head sees it at inference
    with trainable(model, head, options.freeze) as pretrained:
        fit = HeadFit(model, head, target, dataset, train_indices, validation_indices,
                      options, pretrained, dtype)
        result = fit.run(progress)
    logger.info("finetune %s: validation MAE %.4g at step %d of %d", target.name,
                result["validation"]["mae"], result["best_step"], result["steps"])
    return FinetuneResult(model=model, target=target, options=options,
                          n_train=len(train_records), n_validation=len(validation_records),
                          **result)


def check_new_head_name(model: TriDFTModel, name: str) -> None:
    """ConfigError when ``model`` already has a head called ``name``."""
    if name in model.heads:
        raise ConfigError(f"finetune: the model already has a head named '{name}' (heads: "
                          f"{', '.join(model.heads)}); choose another --property name")


def save_finetuned(result: FinetuneResult, path: str | os.PathLike) -> None:
    """Save the fine-tuned model (old heads plus the new one), recording how it was made."""
    metadata = dict(getattr(result.model, "metadata", None) or {})
    metadata["finetuned"] = list(metadata.get("finetuned", [])) + [result.summary()]
    if isinstance(metadata.get("units"), dict):
        metadata["units"] = {**metadata["units"], result.target.name: (
            "e*Angstrom" if result.target.kind == "dipole" else "as in the fine-tuning labels")}
    save_model(result.model, path, metadata=metadata)
    result.model.metadata = metadata


def _split(labelled: list[Record], options: FinetuneOptions) -> tuple[list[Record], list[Record]]:
    """(training, validation) records: ``n_train`` drawn at random, a fraction held out."""
    rng = np.random.default_rng(options.seed)
    n_used = len(labelled) if options.n_train is None else options.n_train
    if n_used > len(labelled):
        raise InputError(f"--n-train {n_used} asks for more labelled structures than there "
                         f"are ({len(labelled)})")
    if n_used < 2:
        raise InputError(f"need at least 2 labelled structures (one to train, one to "
                         f"validate), found {n_used}")
    order = rng.permutation(len(labelled))[:n_used]
    n_validation = min(max(1, round(options.validation_fraction * n_used)), n_used - 1)
    return ([labelled[i] for i in order[n_validation:]],
            [labelled[i] for i in order[:n_validation]])


def _refuse_periodic(records: Sequence[Record]) -> None:
    for index, record in enumerate(records):
        if record.is_periodic:
            raise InputError("a dipole head needs molecules: the dipole of a periodic cell is "
                             "ill-defined with positions", path=record.source or None,
                             index=None if record.source else index, field="pbc")


def _warn_unknown_elements(model: TriDFTModel, records: Sequence[Record]) -> None:
    unseen = unknown_elements([z for r in records for z in r.numbers], model.elements)
    if unseen:
        logger.warning("elements %s were not in the model's training set: their latent is "
                       "untrained", unseen)


__all__ = ["FREEZE_MODES", "KINDS", "FinetuneOptions", "FinetuneResult", "LatentSource",
           "check_new_head_name", "evaluate_target", "finetune", "read_labels",
           "save_finetuned"]
