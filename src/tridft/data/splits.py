"""Train / validation / test splits: reproducible from a seed, saved as JSON.

>>> splits = make_splits(10, fractions=(0.8, 0.1, 0.1), seed=0)
>>> len(splits.train), len(splits.validation), len(splits.test)
(8, 1, 1)
>>> splits == make_splits(10, seed=0)
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Sequence

import numpy as np

from tridft.errors import ConfigError, InputError
from tridft.files import write_text_atomic

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Splits:
    """Sorted, disjoint structure indices into a dataset of ``n`` structures."""

    train: list[int]
    validation: list[int]
    test: list[int]
    n: int
    seed: int | None = None

    def to_dict(self) -> dict:
        return {"n": self.n, "seed": self.seed, "train": self.train,
                "validation": self.validation, "test": self.test}

    @classmethod
    def from_dict(cls, data: dict, path: str | None = None) -> "Splits":
        """Check and build; InputError (naming ``path``) when indices overlap or fall outside n."""
        try:
            n = int(data["n"])
            parts = {name: [int(i) for i in data[name]] for name in SPLIT_NAMES}
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"not a splits file ({error!r})", path=path) from None
        seen: set[int] = set()
        for name, indices in parts.items():
            if any(i < 0 or i >= n for i in indices):
                raise InputError(f"index outside 0..{n - 1}", path=path, field=name)
            if seen.intersection(indices) or len(set(indices)) != len(indices):
                raise InputError("index used twice", path=path, field=name)
            seen.update(indices)
        return cls(**parts, n=n, seed=data.get("seed"))

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (a temporary file, then os.replace): never half a file."""
        write_text_atomic(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Splits":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read splits: {error}", path=str(path)) from None
        if not isinstance(data, dict):
            raise InputError("not a splits file", path=str(path))
        return cls.from_dict(data, path=str(path))


def make_splits(n: int, fractions: Sequence[float] | Sequence[int] = (0.8, 0.1, 0.1),
                seed: int = 0) -> Splits:
    """Split ``range(n)`` at random, reproducibly from ``seed``.

    fractions: three floats (fractions of n, summing to at most 1) or three ints
               (counts, summing to at most n), for train, validation, test. When
               float fractions sum to 1, train takes every structure left over.

    Validation and test are drawn first, so a smaller training set with the same
    seed keeps the same validation and test structures (learning curves).
    """
    counts = _counts(n, fractions)
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_valid, n_test = counts
    validation = order[:n_valid]
    test = order[n_valid:n_valid + n_test]
    train = order[n_valid + n_test:n_valid + n_test + n_train]
    return Splits(train=sorted(train.tolist()), validation=sorted(validation.tolist()),
                  test=sorted(test.tolist()), n=n, seed=seed)


def _counts(n: int, fractions) -> tuple[int, int, int]:
    values = list(fractions)
    if len(values) != 3 or any(v < 0 for v in values):
        raise ConfigError(f"splits: expected three non-negative numbers, got {values}")
    if all(isinstance(v, Integral) and not isinstance(v, bool) for v in values):
        counts = tuple(int(v) for v in values)
        if sum(counts) > n:
            raise ConfigError(f"splits: counts {counts} add up to more than {n} structures")
        return counts
    if sum(values) > 1 + 1e-9:
        raise ConfigError(f"splits: fractions {values} add up to more than 1")
    n_valid = round(values[1] * n)
    n_test = min(round(values[2] * n), n - n_valid)  # rounding both up could exceed n
    if abs(sum(values) - 1) <= 1e-9:
        n_train = n - n_valid - n_test
    else:
        n_train = min(round(values[0] * n), n - n_valid - n_test)
    return n_train, n_valid, n_test
