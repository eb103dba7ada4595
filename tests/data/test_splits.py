"""Splits are reproducible from the seed, disjoint, and survive a save and load."""

from __future__ import annotations

import json

import pytest

from tridft.data.splits import Splits, make_splits
from tridft.errors import ConfigError, InputError


def test_reproducible_disjoint_and_complete():
    splits = make_splits(100, (0.8, 0.1, 0.1), seed=7)
    assert splits == make_splits(100, (0.8, 0.1, 0.1), seed=7)
    assert splits != make_splits(100, (0.8, 0.1, 0.1), seed=8)
    parts = [set(splits.train), set(splits.validation), set(splits.test)]
    assert [len(p) for p in parts] == [80, 10, 10]
    assert set.union(*parts) == set(range(100))
    assert sum(len(p) for p in parts) == 100


def test_counts_and_nested_training_subsets():
    full = make_splits(50, (40, 5, 5), seed=1)
    small = make_splits(50, (10, 5, 5), seed=1)
    assert (len(small.train), len(small.validation), len(small.test)) == (10, 5, 5)
    # Same seed, same validation and test sets, whatever the training size.
    assert small.validation == full.validation and small.test == full.test
    assert set(small.train) <= set(full.train)


@pytest.mark.parametrize("fractions", [(0.8, 0.2, 0.1), (60, 30, 20), (0.5, -0.1, 0.1),
                                       (0.5, 0.5)])
def test_impossible_fractions_are_config_errors(fractions):
    with pytest.raises(ConfigError):
        make_splits(100, fractions)


def test_save_and_load(tmp_path):
    splits = make_splits(20, seed=3)
    path = tmp_path / "runs" / "splits.json"
    splits.save(path)
    assert Splits.load(path) == splits
    assert [p.name for p in path.parent.iterdir()] == ["splits.json"]  # no temporary left


def test_overlapping_or_corrupt_file_is_an_input_error(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"n": 5, "train": [0, 1], "validation": [1], "test": []}))
    with pytest.raises(InputError, match="validation"):
        Splits.load(path)
    path.write_text('{"n": 5, "train": [0, 1')
    with pytest.raises(InputError, match="splits.json"):
        Splits.load(path)
