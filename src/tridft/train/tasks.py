"""Which tasks a run trains and which heads its model gets: every label the data carries.

    plan = plan_tasks(config, train_records)
    plan.weights          {"polarizability": 1.0, "dipole": 1.0}: trained tasks, weights
    plan.standard_heads   ("polarizability",): which of energy, forces, polarizability
    plan.targets          {"dipole": Target("dipole", "dipole")}: further heads
    plan.jacobian         whether the Jacobian term applies
    plan.not_trained      tasks of loss.weights whose label no training structure carries
    model = plan.build_model(config.model, stats, train_records)

The rules:

- A task is trained when at least one training structure carries its label
  (``conservative_forces``: the force labels). A task whose label no training
  structure carries is left out, and gets no head: a set of polarizabilities and
  dipoles trains no energy, no forces, no Jacobian term.
- A label the data carries that ``loss.weights`` does not name is trained with its
  default weight (``DEFAULT_WEIGHTS``, 1 for labels without one). A weight of 0
  leaves a label out.
- The energy head exists when energies are trained or the force labels shape it
  (``conservative_forces``, the Jacobian term, or ``force_source: conservative``);
  the direct force head when forces are trained; the polarizability head when
  polarizabilities are. The Jacobian term needs both the energy and the force head.
- Dipoles get a ``DipoleHead`` (molecules only). A further label, mapped with
  ``data.keys: {extra.NAME: key}``, gets a head of the kind ``data.kinds.NAME``:
  structure_scalar (a sum over atoms), structure_scalar_mean (a mean),
  structure_vector, structure_tensor (symmetric 3x3), atom_scalar. Without one the
  kind follows from the label's shape where that is unambiguous: one number per
  atom (atom_scalar), 3 per structure (structure_vector), 9 (structure_tensor).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from tridft.data.record import DIPOLE, ENERGY, FORCES, LABELS, POLARIZABILITY, Record
from tridft.errors import ConfigError, InputError
from tridft.model.model import CONSERVATIVE_FORCES, STANDARD_HEADS, build_model
from tridft.train.config import LossConfig
from tridft.transfer.targets import Target

logger = logging.getLogger(__name__)

# Weights of labels that loss.weights does not name: those of the default configuration
# (one source for both), the dipole 1 (others: 1).
DEFAULT_WEIGHTS = {**LossConfig().weights, DIPOLE: 1.0}
# Task -> the label it is compared with, where that is not the task's own name.
TASK_LABELS = {CONSERVATIVE_FORCES: FORCES}
_KINDS_BY_SIZE = {3: "structure_vector", 9: "structure_tensor"}


@dataclass
class TaskPlan:
    """What a run trains (see the module docstring)."""

    weights: dict[str, float]
    standard_heads: tuple[str, ...]
    targets: dict[str, Target] = field(default_factory=dict)
    jacobian: bool = False
    not_trained: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # trained with a default weight

    @property
    def tasks(self) -> list[str]:
        """The trained tasks, sorted by name (as LossConfig.tasks)."""
        return sorted(self.weights)

    @property
    def heads(self) -> list[str]:
        return list(self.standard_heads) + list(self.targets)

    def loss_config(self, loss):
        """``loss`` (a LossConfig) with the plan's weights, and without the Jacobian term
        where there is no energy or no force head."""
        return loss.model_copy(update={
            "weights": dict(self.weights),
            "jacobian_weight": loss.jacobian_weight if self.jacobian else 0.0})

    def conform(self, records: Sequence[Record]) -> list[Record]:
        """``records`` with the labels of further heads in their kind's shape (9 numbers
        become 3x3, ...); InputError naming the structure when a label does not fit."""
        records = list(records)
        for target in self.targets.values():
            records = [target.conform([r])[0] if target.value(r) is not None else r
                       for r in records]
        return records

    def build_model(self, model_config, stats, train_records: Sequence[Record]):
        """A model with the plan's heads, scaled by ``stats`` and the training labels."""
        model = build_model(model_config, stats, heads=self.standard_heads)
        parameter = next(model.parameters())
        for target in self.targets.values():
            labelled = [r for r in train_records if target.value(r) is not None]
            head = target.build_head(labelled, model_config,
                                     dipole_scale=getattr(stats, "dipole_scale", None))
            model.add_head(head.to(device=parameter.device, dtype=parameter.dtype))
        return model

    def describe(self) -> str:
        """'polarizability (weight 1), dipole (weight 1)'."""
        return ", ".join(f"{task} (weight {weight:g})" for task, weight in self.weights.items())

    def to_dict(self) -> dict:
        return {"weights": dict(self.weights), "heads": self.heads,
                "kinds": {name: target.kind + ("" if target.extensive else "_mean")
                          for name, target in self.targets.items()},
                "jacobian": self.jacobian, "not_trained": list(self.not_trained)}


def plan_tasks(config, records: Sequence[Record], source: str | None = None) -> TaskPlan:
    """The TaskPlan of TrainConfig ``config`` for the training ``records``.

    ConfigError for a weight that names no label; InputError when the records carry
    nothing to train, or dipoles on periodic cells.
    """
    extras = _extra_names(config, records)
    carried = {label for label in (*LABELS, *extras) if any(r.has(label) for r in records)}
    weights, not_trained = {}, []
    for task, weight in config.loss.weights.items():
        label = TASK_LABELS.get(task, task)
        if label not in LABELS and label not in extras:
            if weight > 0:
                raise ConfigError(f"loss.weights.{task}: no such label (known: "
                                  f"{', '.join((*LABELS, CONSERVATIVE_FORCES))}; map a "
                                  f"further one with data.keys, e.g. extra.{task}: KEY)")
            continue
        if weight <= 0:
            continue
        if label in carried:
            weights[task] = float(weight)
        else:
            not_trained.append(task)
    added = [label for label in (*LABELS, *sorted(extras))
             if label in carried and label not in config.loss.weights]
    weights.update({label: DEFAULT_WEIGHTS.get(label, 1.0) for label in added})
    if not weights:
        raise InputError(f"no training structure carries a label to train (looked for "
                         f"{', '.join(LABELS + tuple(sorted(extras)))}): nothing to learn. "
                         f"Name the labels of the file with data.keys (e.g. energy: potential)",
                         path=source, field="labels")

    force_source = config.training.force_source
    jacobian_weight = config.loss.jacobian_weight
    energy = (ENERGY in weights or CONSERVATIVE_FORCES in weights
              or (FORCES in weights and (jacobian_weight > 0 or force_source == "conservative")))
    wanted = {ENERGY: energy, FORCES: FORCES in weights,
              POLARIZABILITY: POLARIZABILITY in weights}
    standard = tuple(name for name in STANDARD_HEADS if wanted[name])
    targets = {label: _target(config, label, records, source)
               for label in weights if label == DIPOLE or label in extras}
    plan = TaskPlan(weights=weights, standard_heads=standard, targets=targets,
                    jacobian=energy and FORCES in weights and jacobian_weight > 0,
                    not_trained=not_trained, added=added)
    logger.info("training %s", plan.describe())
    if not_trained:
        logger.info("not trained (no training structure carries the label): %s",
                    ", ".join(not_trained))
    return plan


def _extra_names(config, records: Sequence[Record]) -> set[str]:
    """Names of the further labels: mapped in data.keys, or found in the records."""
    mapped = {name[len("extra."):] for name in config.data.keys if name.startswith("extra.")}
    return mapped | {name for r in records for name in (*r.extra, *r.atom_extra)}


def _target(config, label: str, records: Sequence[Record], source: str | None) -> Target:
    """The Target (head kind) of a dipole or a further label."""
    if label == DIPOLE:
        periodic = next((k for k, r in enumerate(records) if r.has(DIPOLE) and r.is_periodic),
                        None)
        if periodic is not None:
            where = records[periodic].source or f"training structure {periodic}"
            raise InputError(f"{where}: a dipole label on a periodic cell; the dipole head is "
                             f"for molecules: leave the dipoles out with loss.weights.dipole=0")
        return Target(DIPOLE, "dipole")
    kind = config.data.kinds.get(label) or _kind_from_shape(label, records)
    if kind == "structure_scalar_mean":
        return Target(label, "structure_scalar", extensive=False)
    return Target(label, kind)


def _kind_from_shape(label: str, records: Sequence[Record]) -> str:
    record = next(r for r in records if r.has(label))
    size = int(record.label(label).size)
    if label in record.atom_extra:
        if size == record.n_atoms:
            return "atom_scalar"
        raise ConfigError(f"data.kinds.{label}: the label has {size // record.n_atoms} "
                          f"numbers per atom; tridft has heads for one (atom_scalar)")
    if size in _KINDS_BY_SIZE:
        return _KINDS_BY_SIZE[size]
    if size == 1:
        raise ConfigError(f"data.kinds.{label}: give the kind of this one-number label: "
                          f"structure_scalar (a sum over atoms: extensive, like an energy) "
                          f"or structure_scalar_mean (intensive, like a gap)")
    raise ConfigError(f"data.kinds.{label}: a label of {size} numbers per structure fits no "
                      f"head kind (1, 3 or 9 numbers)")
