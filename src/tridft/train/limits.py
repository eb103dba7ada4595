"""When training stops: step, epoch and time limits, early stopping, non-finite losses.

Every process takes the same decision: where clocks could differ, rank 0 decides.
"""

from __future__ import annotations

import math
from pathlib import Path

from tridft.errors import TriDFTError
from tridft.train import checkpoint as ckpt
from tridft.train import distributed


def count_total_steps(training, steps_per_epoch: int) -> int | None:
    limits = [training.max_steps] if training.max_steps else []
    if training.max_epochs:
        limits.append(training.max_epochs * steps_per_epoch)
    return min(limits) if limits else None


def shared_elapsed(elapsed_s: float, training, context: distributed.Context) -> float:
    """Rank 0's training time where the learning rate depends on it (a time limit):
    every process then sets the same rate."""
    if training.time_limit_minutes is None or not context.is_distributed:
        return elapsed_s
    return context.broadcast_float(elapsed_s)


def stop_reason(state: ckpt.TrainingProgress, training, steps_per_epoch: int, elapsed_s: float,
                 context: distributed.Context) -> str:
    """Why training stops now ("" to go on); every process gets the same answer."""
    reason = ""
    if training.max_steps is not None and state.step >= training.max_steps:
        reason = "max_steps"
    elif training.max_epochs is not None and state.epoch >= training.max_epochs:
        reason = "max_epochs"
    elif out_of_patience(state.validations_without_improvement,
                         training.early_stopping_patience):
        reason = "early_stopping"
    elif training.time_limit_minutes is not None and elapsed_s >= 60 * training.time_limit_minutes:
        reason = "time_limit"
    if context.is_distributed:  # the clock may differ between processes: rank 0 decides
        codes = ["", "max_steps", "max_epochs", "early_stopping", "time_limit"]
        reason = codes[int(context.broadcast_float(codes.index(reason)))]
    return reason


def out_of_patience(validations_without_improvement: int, patience: int | None) -> bool:
    """Early stopping: ``patience`` validations in a row have not improved (None: never)."""
    return patience is not None and validations_without_improvement >= patience


class EarlyStopping:
    """The best validation score so far (lower is better), its step, and the validations
    since; fine-tuning keeps its best weights by it.

        stopping = EarlyStopping(patience=30, best_score=initial_score)
        if stopping.update(score, step):
            ...  # a new best: keep these weights
        if stopping.should_stop:
            break
    """

    def __init__(self, patience: int | None, best_score: float = math.inf, best_step: int = 0):
        self.patience = patience
        self.best_score = best_score
        self.best_step = best_step
        self.validations_without_improvement = 0

    def update(self, score: float, step: int) -> bool:
        """Record the validation ``score`` of ``step``; whether it is a new best."""
        if score < self.best_score:
            self.best_score, self.best_step = score, step
            self.validations_without_improvement = 0
            return True
        self.validations_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        return out_of_patience(self.validations_without_improvement, self.patience)


# A run whose loss or gradient turns non-finite goes back to its last checkpoint with
# half the learning rate, at most this many times (train/loop.py).
MAX_ROLLBACKS = 3


def non_finite(values: dict[str, float], context: distributed.Context) -> str | None:
    """"name = value, ..." of the non-finite ``values`` (None when all are finite). Every
    process gets an answer when any has a non-finite value, so all take the same path."""
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if not context.any(bool(bad)):
        return None
    return ", ".join(f"{name} = {value}" for name, value in bad.items()) or "on another process"


def divergence_error(step: int, terms: str, last_checkpoint: int | None,
                     checkpoint_path: Path, rollbacks: int) -> TriDFTError:
    """The error that stops a run whose loss stays non-finite."""
    where = (f"the last good checkpoint is {checkpoint_path} (step {last_checkpoint})"
             if last_checkpoint is not None else "no checkpoint was written yet")
    tried = f" after {rollbacks} roll-backs with a halved learning rate" if rollbacks else ""
    return TriDFTError(f"step {step}: non-finite training loss ({terms}){tried}; {where}. "
                       f"Check the labels, or lower training.lr")