"""Loss terms: one masked, normalised term per task, plus regularizers without targets.

Supervised terms compare a head's output with the labels of the structures (or
atoms) that carry them, on residuals made dimensionless by the dataset's scales:

    energy          (E_pred - E) / n_atoms / energy_per_atom_scale      per structure
    forces          (F_pred - F) / forces_rms                           per atom, component
    polarizability  (a_pred - a) / n_atoms / polarizability_scale       per structure, 9 comps
    dipole          (mu_pred - mu) / dipole_scale                       per structure, 3 comps
    any extra head  (y_pred - y) / its scale

and average the squared (or Huber) residuals over the entries that are present
only: a structure without a polarizability neither adds to nor dilutes that
loss. A batch without any label of a task gives an exact zero that still
belongs to the autograd graph.

Regularizers (SchNetPack's "loss term without a target") plug in beside them:
the Jacobian term pulls the direct forces and -dE/dR together, the KL term
compresses the latent. Their weights ramp up linearly over a warm-up.

Every term is computed as (sum, count) so that data-parallel ranks can share
the denominators (``Objective.count_average``) and reproduce the loss of one
process on the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch

from tridft.data.batch import Batch
from tridft.model.jacobian import jacobian_penalty
from tridft.model.model import CONSERVATIVE_FORCES

LossKind = Literal["mse", "huber"]


def elementwise_loss(residuals: torch.Tensor, kind: LossKind, delta: float) -> torch.Tensor:
    """r^2 (mse) or Huber(r): 0.5 r^2 for |r| <= delta, delta (|r| - delta/2) beyond."""
    if kind == "mse":
        return residuals**2
    return torch.nn.functional.huber_loss(residuals, torch.zeros_like(residuals),
                                          reduction="none", delta=delta)


def labels_of(batch: Batch, task: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(values, mask) of ``task`` in ``batch``: mask (S,) or (N,) bool; None if nobody has it."""
    if task in ("energy", "forces", "polarizability", "dipole"):
        return getattr(batch, task), getattr(batch, f"{task}_mask")
    if task in batch.extra:
        return batch.extra[task]
    if task in batch.atom_extra:
        return batch.atom_extra[task]
    return None


@dataclass
class LossTerm:
    """The loss of one task: its head's output against its labels, where present.

    name:      the task
    scale:     residuals are divided by this (the label's unit; per atom if per_atom)
    per_atom:  divide structure-level residuals by the structure's atom count first
    output:    the model output compared with the labels (default: ``name``)
    label:     the label compared with (default: ``name``)
    """

    name: str
    scale: float = 1.0
    per_atom: bool = False
    output: str = ""
    kind: LossKind = "mse"
    delta: float = 1.0
    label: str = ""

    def __post_init__(self):
        self.output = self.output or self.name
        self.label = self.label or self.name

    def sum_and_count(self, outputs: dict[str, torch.Tensor],
                      batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of elementwise losses over present entries, number of entries) as tensors."""
        prediction = outputs[self.output]
        labels = labels_of(batch, self.label)
        if labels is None:  # no structure in this batch knows the label
            return prediction[:0].sum(), torch.zeros((), device=prediction.device)
        target, mask = labels
        residuals = prediction - target.to(prediction.dtype)
        if self.per_atom:
            # (S, ...) / (S, 1, ...): extensive labels compared per atom.
            n_atoms = batch.n_atoms.to(residuals.dtype)
            residuals = residuals / n_atoms.reshape((-1,) + (1,) * (residuals.dim() - 1))
        present = residuals[mask] / self.scale  # (present entries, *components)
        values = elementwise_loss(present, self.kind, self.delta)
        # An empty selection sums to an exact zero that still has a grad_fn.
        return values.sum(), torch.tensor(float(values.numel()), device=prediction.device)

    def __call__(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        """Mean over present entries; exactly zero (with a graph) when none is present."""
        total, count = self.sum_and_count(outputs, batch)
        return total / count.clamp(min=1.0)


def linear_warmup(weight: float, warmup_steps: int, step: int) -> float:
    """``weight`` ramped linearly from 0 at step 0 to full at ``warmup_steps``.

    >>> [linear_warmup(2.0, 4, s) for s in (0, 2, 4, 10)]
    [0.0, 1.0, 2.0, 2.0]
    """
    if warmup_steps <= 0:
        return weight
    return weight * min(1.0, step / warmup_steps)


@dataclass
class JacobianTerm:
    """mean over atoms and components of ((F_direct - (-dE/dR)) / forces_rms)^2.

    pulls: "both" moves the direct head and the energy surface towards each other;
    "direct_head" moves only the direct head (-dE/dR is held fixed in this term), so
    the energy surface is shaped by the labels alone and the fast head follows it.
    """

    weight: float
    warmup_steps: int = 0
    scale: float = 1.0
    name: str = "jacobian"
    pulls: str = "both"

    def sum_and_count(self, outputs, batch) -> tuple[torch.Tensor, torch.Tensor]:
        direct, conservative = outputs["forces"], outputs[CONSERVATIVE_FORCES]
        if self.pulls == "direct_head":
            conservative = conservative.detach()
        count = float(direct.numel())
        mean = jacobian_penalty(direct, conservative, self.scale) if count else direct.sum()
        return mean * count, torch.tensor(count, device=direct.device)


@dataclass
class KLTerm:
    """mean over atoms of the latent KL summed over channels, nats per atom."""

    weight: float
    warmup_steps: int = 0
    name: str = "kl"

    def sum_and_count(self, outputs, batch) -> tuple[torch.Tensor, torch.Tensor]:
        kl = outputs["latent_kl"]  # (N, Ls)
        return kl.sum(), torch.tensor(float(kl.shape[0]), device=kl.device)


@dataclass
class Losses:
    """The losses of one batch.

    tasks:               task -> normalised loss (unweighted; balancing weighs them)
    present:             task -> whether any entry of the (global) batch had the label
    regularizers:        name -> unweighted regularizer value
    regularizer_weights: name -> its weight at this step (after warm-up)
    """

    tasks: dict[str, torch.Tensor]
    present: dict[str, bool]
    regularizers: dict[str, torch.Tensor] = field(default_factory=dict)
    regularizer_weights: dict[str, float] = field(default_factory=dict)

    def present_tasks(self) -> dict[str, torch.Tensor]:
        return {task: loss for task, loss in self.tasks.items() if self.present[task]}

    def regularization(self) -> torch.Tensor | float:
        """sum of weight * value over the regularizers (0.0 when there are none)."""
        return sum((self.regularizer_weights[name] * value
                    for name, value in self.regularizers.items()), 0.0)

    def as_floats(self) -> dict[str, float]:
        """For logging: ``loss_<task>`` (present tasks) and ``reg_<name>``."""
        values = {f"loss_{task}": float(loss.detach()) for task, loss in self.tasks.items()
                  if self.present[task]}
        values.update({f"reg_{name}": float(value.detach())
                       for name, value in self.regularizers.items()})
        return values


def needs_minus_dE_dR(term: LossTerm | JacobianTerm | KLTerm) -> bool:
    """Whether the term reads the conservative forces -dE/dR (a double backward)."""
    return isinstance(term, JacobianTerm) \
        or (isinstance(term, LossTerm) and term.output == CONSERVATIVE_FORCES)


class Objective:
    """All loss terms of a run: the supervised tasks and the regularizers.

    ``count_average`` turns this process's entry counts into the mean count per
    process; data-parallel training sets it to an all-reduce so that each rank's
    loss is its share of the loss of the whole global batch.
    """

    def __init__(self, tasks: list[LossTerm], regularizers: list[JacobianTerm | KLTerm],
                 count_average: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.tasks = tasks
        self.regularizers = [term for term in regularizers if term.weight > 0]
        self.count_average = count_average or (lambda counts: counts)

    @property
    def needs_conservative_forces(self) -> bool:
        return any(needs_minus_dE_dR(term) for term in self.tasks + self.regularizers)

    def __call__(self, outputs: dict[str, torch.Tensor], batch: Batch, step: int,
                 conservative: bool = True) -> Losses:
        """The losses of one batch. ``conservative=False``: ``outputs`` has no -dE/dR
        (a step that skips it, see LossConfig.conservative_every); the terms that need it
        count as absent for this step."""
        tasks = [term for term in self.tasks if conservative or not needs_minus_dE_dR(term)]
        regularizers = [term for term in self.regularizers
                        if conservative or not needs_minus_dE_dR(term)]
        terms = tasks + regularizers
        sums, counts = zip(*(term.sum_and_count(outputs, batch) for term in terms))
        mean_counts = self.count_average(torch.stack(counts))  # (terms,)
        values = [total / count.clamp(min=1.0).to(total.dtype)
                  for total, count in zip(sums, mean_counts)]
        n_tasks = len(tasks)
        skipped = {term.name: torch.zeros(()) for term in self.tasks if term not in tasks}
        return Losses(
            tasks={**{term.name: value for term, value in zip(tasks, values)}, **skipped},
            present={**{term.name: bool(count > 0) for term, count in zip(tasks, mean_counts)},
                     **{name: False for name in skipped}},
            regularizers={term.name: value
                          for term, value in zip(regularizers, values[n_tasks:])},
            regularizer_weights={term.name: linear_warmup(term.weight, term.warmup_steps, step)
                                 for term in regularizers},
        )


# -dE/dR supervised with the force labels: the energy surface itself learns the forces,
# not only through the Jacobian term's pull towards the direct head.
CONSERVATIVE_FORCES_TASK = CONSERVATIVE_FORCES

# How each known task is normalised: (name of the DatasetStats scale, per atom).
TASK_SCALES = {
    "energy": ("energy_per_atom_scale", True),
    "forces": ("forces_rms", False),
    CONSERVATIVE_FORCES_TASK: ("forces_rms", False),
    "polarizability": ("polarizability_scale", True),
    "dipole": ("dipole_scale", False),
}


def build_objective(loss_config, stats, force_source: str = "direct",
                    extra_scales: dict[str, float] | None = None,
                    count_average: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> Objective:
    """The Objective of a LossConfig, with the scales of DatasetStats ``stats``.

    ``extra_scales`` gives the scale of tasks that DatasetStats does not know
    (labels of extra heads); missing ones are 1. ``count_average``: see Objective.
    """
    extra_scales = extra_scales or {}
    tasks = []
    for task in loss_config.tasks():
        scale_name, per_atom = TASK_SCALES.get(task, (None, False))
        scale = getattr(stats, scale_name) if scale_name else extra_scales.get(task, 1.0)
        output = CONSERVATIVE_FORCES if task == "forces" and force_source == "conservative" \
            else task
        label = "forces" if task == CONSERVATIVE_FORCES_TASK else task
        tasks.append(LossTerm(task, scale=float(scale), per_atom=per_atom, output=output,
                              kind=loss_config.kind, delta=loss_config.huber_delta,
                              label=label))
    regularizers = [
        JacobianTerm(loss_config.jacobian_weight, loss_config.jacobian_warmup_steps,
                     scale=float(stats.forces_rms), pulls=loss_config.jacobian_pulls),
        KLTerm(loss_config.kl_beta, loss_config.kl_warmup_steps),
    ]
    return Objective(tasks, regularizers, count_average)
