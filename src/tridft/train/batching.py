"""Which structures form each step's batch: a number of structures, capped by a number of atoms.

A batch of 16 structures is 144 atoms of ethanol but 3072 atoms of a 192-atom water
cell, a step 20 times as expensive. ``training.batch_atoms`` caps the atoms of a global
batch: consecutive structures of the epoch's shuffled order are taken while both
``batch_size`` (structures) and ``batch_atoms`` allow, and always at least one per
process. Where the cap never binds (small molecules) the batches are exactly the
``batch_size`` slices of the order.

>>> epoch_batches([3, 0, 2, 1], atoms=[10, 10, 200, 10], batch_size=2, batch_atoms=100)
[[3, 0], [2], [1]]
>>> epoch_batches([3, 0, 2, 1], atoms=[10, 10, 200, 10], batch_size=2, batch_atoms=None)
[[3, 0], [2, 1]]
"""

from __future__ import annotations

import logging
from typing import Sequence

from tridft.errors import ConfigError

logger = logging.getLogger(__name__)


def epoch_batches(order: Sequence[int], atoms: Sequence[int], batch_size: int,
                  batch_atoms: int | None, world_size: int = 1) -> list[list[int]]:
    """The global batches of one epoch, in order.

    order:  the epoch's shuffled structure indices
    atoms:  atoms per structure (indexed by structure)
    A batch closes when it holds ``batch_size`` structures, or when the next structure
    would take it past ``batch_atoms`` and it already holds ``world_size`` structures
    (one per process). A last batch with fewer than ``world_size`` structures is dropped.
    """
    batches, current, current_atoms = [], [], 0
    for index in order:
        size = int(atoms[index])
        over_budget = batch_atoms is not None and current_atoms + size > batch_atoms
        if current and (len(current) == batch_size or
                        (over_budget and len(current) >= world_size)):
            batches.append(current)
            current, current_atoms = [], 0
        current.append(index)
        current_atoms += size
    if len(current) >= world_size:
        batches.append(current)
    if not batches:
        raise ConfigError(f"training.batch_size: {len(order)} training structures cannot fill "
                          f"a batch for {world_size} processes")
    return batches


def expected_steps_per_epoch(atoms: Sequence[int], batch_size: int, batch_atoms: int | None,
                             world_size: int = 1) -> int:
    """Global batches of an epoch in the order of the data set: the schedule's length
    under ``max_epochs`` (shuffled epochs differ by a step or two where the atom cap
    binds; training stops at the epoch limit itself)."""
    return len(epoch_batches(range(len(atoms)), atoms, batch_size, batch_atoms, world_size))


def log_batch_cap(atoms: Sequence[int], training, steps_per_epoch: int) -> None:
    """Say so when the atom cap makes batches smaller than ``batch_size`` structures
    (``steps_per_epoch``: the capped count, from expected_steps_per_epoch)."""
    if steps_per_epoch > expected_steps_per_epoch(atoms, training.batch_size, None):
        logger.info("training.batch_atoms %d: %.1f structures per batch on average "
                    "(batch_size %d)", training.batch_atoms, len(atoms) / steps_per_epoch,
                    training.batch_size)
