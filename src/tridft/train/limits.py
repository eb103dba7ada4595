"""When training stops: step, epoch and time limits, early stopping, non-finite losses.

Every process takes the same decision: where clocks could differ, rank 0 decides.
"""

from __future__ import annotations

import math
from pathlib import Path

from tridft.errors import ConfigError, TriDFTError
from tridft.train import checkpoint as ckpt
from tridft.train import distributed


def count_steps_per_epoch(n_train: int, batch_size: int, world_size: int) -> int:
    """Global batches per epoch; a last batch too small to give every process a structure
    is dropped."""
    full, rest = divmod(n_train, batch_size)
    steps = full + (rest >= world_size and rest > 0)
    if steps == 0:
        raise ConfigError(f"training.batch_size: {n_train} training structures cannot fill a "
                          f"batch for {world_size} processes")
    return steps


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
    elif (training.early_stopping_patience is not None
          and state.validations_without_improvement >= training.early_stopping_patience):
        reason = "early_stopping"
    elif training.time_limit_minutes is not None and elapsed_s >= 60 * training.time_limit_minutes:
        reason = "time_limit"
    if context.is_distributed:  # the clock may differ between processes: rank 0 decides
        codes = ["", "max_steps", "max_epochs", "early_stopping", "time_limit"]
        reason = codes[int(context.broadcast_float(codes.index(reason)))]
    return reason


def stop_if_not_finite(values: dict[str, float], step: int, last_checkpoint: int | None,
                        checkpoint_path: Path, context: distributed.Context) -> None:
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if not context.any(bool(bad)):
        return
    where = (f"the last good checkpoint is {checkpoint_path} (step {last_checkpoint})"
             if last_checkpoint is not None else "no checkpoint was written yet")
    terms = ", ".join(f"{name} = {value}" for name, value in bad.items()) or "on another process"
    raise TriDFTError(f"step {step}: non-finite training loss ({terms}); {where}. "
                      f"Check the labels, or lower training.lr")
