"""The learning rate as a function of training progress (nanoGPT style: set by hand each step).

    lr = schedule.lr(step, elapsed_seconds)
    for group in optimizer.param_groups: group["lr"] = lr

- linear warm-up over ``warmup_steps`` steps, for every scheduler;
- ``cosine``: from the peak down to ``lr * min_lr_ratio`` at the end of training.
  The end is whichever limit comes first: max_steps, max_epochs, or (when set)
  time_limit_minutes, so a run stopped by its time limit has still cooled down;
- ``plateau``: the rate is multiplied by ``plateau_factor`` after
  ``plateau_patience`` validations without improvement, down to ``lr * min_lr_ratio``;
- ``none``: constant after the warm-up.

Fine-tuning (tridft.transfer) uses the same cosine, as a factor of each parameter
group's own rate: ``LearningRateSchedule.cosine(total_steps, min_ratio)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleSettings:
    """The settings a schedule reads; the training section of a configuration
    (tridft.train.config.TrainingConfig) has the same fields."""

    lr: float
    scheduler: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    time_limit_minutes: float | None = None


def cosine_decay(progress: float, min_ratio: float) -> float:
    """1 at ``progress`` 0, ``min_ratio`` at 1, half a cosine between."""
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LearningRateSchedule:
    """Learning rate per step; the plateau state is saved in checkpoints.

    ``training``: a TrainingConfig or ScheduleSettings; ``total_steps``: the step at which
    the cosine ends (None: no step limit).
    """

    @classmethod
    def cosine(cls, total_steps: int, min_ratio: float,
               peak: float = 1.0) -> LearningRateSchedule:
        """From ``peak`` at step 0 down to ``peak * min_ratio`` at ``total_steps``, without
        warm-up or time limit."""
        return cls(ScheduleSettings(lr=peak, min_lr_ratio=min_ratio), total_steps)

    def __init__(self, training, total_steps: int | None):
        self.peak = training.lr
        self.kind = training.scheduler
        self.warmup_steps = training.warmup_steps
        self.min_ratio = training.min_lr_ratio
        self.factor = training.plateau_factor
        self.patience = training.plateau_patience
        self.total_steps = total_steps
        self.time_limit_s = (training.time_limit_minutes * 60.0
                             if training.time_limit_minutes else None)
        # Plateau state.
        self.multiplier = 1.0
        self.best = math.inf
        self.bad_validations = 0

    def progress(self, step: int, elapsed_s: float) -> float:
        """Fraction of training done after the warm-up, 0..1, by steps or by time."""
        fractions = []
        if self.total_steps is not None:
            span = max(self.total_steps - self.warmup_steps, 1)
            fractions.append((step - self.warmup_steps) / span)
        if self.time_limit_s is not None:
            fractions.append(elapsed_s / self.time_limit_s)
        return min(max(max(fractions, default=0.0), 0.0), 1.0)

    def lr(self, step: int, elapsed_s: float = 0.0) -> float:
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        if self.kind == "cosine":
            return self.peak * cosine_decay(self.progress(step, elapsed_s), self.min_ratio)
        if self.kind == "plateau":
            return self.peak * self.multiplier
        return self.peak

    def on_validation(self, score: float) -> None:
        """Plateau: count validations without improvement and lower the rate."""
        if self.kind != "plateau":
            return
        if score < self.best:
            self.best, self.bad_validations = score, 0
            return
        self.bad_validations += 1
        if self.bad_validations >= self.patience:
            self.multiplier = max(self.multiplier * self.factor, self.min_ratio)
            self.bad_validations = 0

    def state_dict(self) -> dict:
        return {"multiplier": self.multiplier, "best": self.best,
                "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict) -> None:
        self.multiplier = float(state["multiplier"])
        self.best = float(state["best"])
        self.bad_validations = int(state["bad_validations"])
