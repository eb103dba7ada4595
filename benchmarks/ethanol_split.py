"""The fixed ethanol split of the training benchmarks, and structures written for a run.

The bundled 800 ethanol structures: 100 for test and 50 for validation drawn first
with seed 0 (tridft.data.splits.make_splits), the other 650 form the training pool;
a learning-curve point with n training structures takes the first n of the pool
(nested sets: same validation and test).
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import ase
import ase.io
import numpy as np

from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.record import Record
from tridft.data.splits import Splits, make_splits

N_TEST = 100
N_VALIDATION = 50
N_POOL = 650  # 800 - 100 test - 50 validation
SPLIT_SEED = 0
# --quick: a few structures of each part.
QUICK_SIZES = {"pool": 24, "validation": 8, "test": 8}


@dataclass
class Benchmark:
    """The structures of a benchmark: a training pool, validation and test (clean labels)."""

    pool: list[Record]
    validation: list[Record]
    test: list[Record]
    splits: Splits
    quick: bool


def load_benchmark_data(quick: bool = False) -> Benchmark:
    records = read_structures(bundled_dataset_path())
    splits = make_splits(len(records), (N_POOL, N_VALIDATION, N_TEST), seed=SPLIT_SEED)
    pool = [records[i] for i in splits.train]
    validation = [records[i] for i in splits.validation]
    test = [records[i] for i in splits.test]
    if quick:
        pool = pool[:QUICK_SIZES["pool"]]
        validation = validation[:QUICK_SIZES["validation"]]
        test = test[:QUICK_SIZES["test"]]
    return Benchmark(pool, validation, test, splits, quick)


def write_extxyz(records: Sequence[Record], path: Path) -> None:
    """Records (internal units) -> extxyz that tridft reads back unchanged.

    A label that is None is simply absent from that frame.
    """
    frames = []
    for record in records:
        atoms = ase.Atoms(numbers=record.numbers, positions=record.positions,
                          cell=record.cell if record.cell is not None else np.zeros((3, 3)),
                          pbc=record.pbc)
        if record.energy is not None:
            atoms.info["energy"] = float(record.energy)
        if record.polarizability is not None:
            atoms.info["polarizability"] = np.asarray(record.polarizability, float).ravel()
        if record.dipole is not None:
            atoms.info["dipole"] = np.asarray(record.dipole, float)
        if record.forces is not None:
            atoms.arrays["forces"] = np.asarray(record.forces, float)
        frames.append(atoms)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".extxyz", delete=False) as handle:
        temporary = handle.name
    ase.io.write(temporary, frames, format="extxyz")
    os.replace(temporary, path)


def copy_records(records: Sequence[Record]) -> list[Record]:
    return [copy.deepcopy(record) for record in records]
