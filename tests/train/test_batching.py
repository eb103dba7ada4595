"""Batches capped by atoms: unchanged for molecules, smaller for large cells, resumable."""

from __future__ import annotations

import pytest

from tridft.errors import ConfigError
from tridft.train.batching import epoch_batches, expected_steps_per_epoch


def test_without_a_binding_cap_batches_are_the_batch_size_slices_of_the_order():
    order = [7, 3, 9, 0, 1, 8, 2, 6, 5, 4]
    atoms = [9] * 10
    for cap in (None, 512, 9 * 4):
        assert epoch_batches(order, atoms, 4, cap) == [[7, 3, 9, 0], [1, 8, 2, 6], [5, 4]]
    # The last, partial batch is dropped only when it cannot give every process one.
    assert epoch_batches(order, atoms, 4, None, world_size=3) == [[7, 3, 9, 0], [1, 8, 2, 6]]


def test_the_cap_bounds_the_atoms_of_every_batch_and_keeps_every_structure():
    atoms = [192, 9, 9, 192, 192, 20, 9, 192, 9, 9, 9]
    order = list(range(len(atoms)))
    batches = epoch_batches(order, atoms, 16, 400)
    assert [i for batch in batches for i in batch] == order
    for batch in batches:
        assert sum(atoms[i] for i in batch) <= 400 or len(batch) == 1
    assert max(len(batch) for batch in batches) <= 16
    # A structure larger than the cap still trains, alone.
    assert epoch_batches([0, 1], [600, 9], 16, 400) == [[0], [1]]
    # One structure per process, even past the cap.
    assert epoch_batches([0, 1, 2, 3], [300] * 4, 16, 400, world_size=2) == [[0, 1], [2, 3]]
    assert expected_steps_per_epoch([192] * 10, 16, 512) == 5


def test_too_few_structures_for_the_processes_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot fill a batch for 4 processes"):
        epoch_batches([0, 1, 2], [9, 9, 9], 16, None, world_size=4)
