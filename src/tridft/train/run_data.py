"""The data of a training run: read, split (or the run's split reused), statistics.

:func:`load_data` reads the structures, splits them (run_dir/split.json on resume),
plans the tasks and computes the dataset statistics on the training split only; a
held-out structure whose energy the reference energies cannot predict keeps its
other labels. :func:`extra_scales` and :func:`mean_atoms` are the numbers the
loss and the validation score need beyond the statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tridft.data.dataset import GraphDataset
from tridft.data.domain import Domain
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.options import keys_from_mapping, units_from_mapping
from tridft.data.record import Record
from tridft.data.references import without_unsupported_energies
from tridft.data.splits import Splits, make_splits
from tridft.data.stats import DatasetStats
from tridft.errors import CheckpointError, ConfigError, InputError
from tridft.train.config import TrainConfig
from tridft.train.losses import TASK_SCALES
from tridft.train.tasks import TaskPlan, plan_tasks

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """The structures of a run, split, with the statistics of the training part."""

    train: GraphDataset
    validation: list[Record]
    test: list[Record]
    splits: Splits
    stats: DatasetStats
    sources: dict[str, str | None]
    domain: Domain | None = None  # what the training structures look like (data/domain.py)
    plan: TaskPlan | None = None  # the tasks and heads of the run (train/tasks.py)


def load_data(config: TrainConfig, run_dir: Path, resume: bool) -> RunData:
    """Read the structures, split them (or reuse the run's split), compute training statistics."""
    data_config = config.data
    keys = keys_from_mapping(data_config.keys, "data.keys")
    units = units_from_mapping(data_config.units, "data.units")
    train_path = Path(data_config.train) if data_config.train else bundled_dataset_path()
    records = read_structures(train_path, keys=keys, units=units)
    if data_config.max_structures is not None:
        records = records[:data_config.max_structures]
    validation = read_structures(data_config.validation, keys, units) \
        if data_config.validation else None
    test = read_structures(data_config.test, keys, units) if data_config.test else None

    split_path = run_dir / "split.json"
    if resume and split_path.is_file():
        splits = Splits.load(split_path)
        if splits.n != len(records):
            raise CheckpointError(f"{split_path}: made for {splits.n} structures, but "
                                  f"{train_path} now gives {len(records)}")
    else:
        splits = make_splits(len(records), _split_counts(config, len(records),
                                                         validation is not None,
                                                         test is not None),
                             seed=data_config.split.seed)
    if not splits.train:
        raise InputError("the training split is empty", path=str(train_path))
    plan = plan_tasks(config, [records[i] for i in splits.train], str(train_path))
    records = plan.conform(records)  # labels of further heads in their kind's shape
    train_set = GraphDataset([records[i] for i in splits.train], config.model.cutoff)
    stats = train_set.stats(isolated_atoms=data_config.reference_energies)
    domain = Domain.from_records(train_set.records, train_set.cutoff,
                                 [train_set.neighbor_list(i) for i in range(len(train_set))],
                                 stats.reference_energies)
    held_out = {"validation": validation if validation is not None
                else [records[i] for i in splits.validation],
                "test": test if test is not None else [records[i] for i in splits.test]}
    held_out = {name: _comparable(plan.conform(part), name, stats)
                for name, part in held_out.items()}
    return RunData(domain=domain, plan=plan,
        train=train_set, validation=held_out["validation"], test=held_out["test"],
        splits=splits, stats=stats,
        sources={"train": str(train_path), "validation": data_config.validation,
                 "test": data_config.test})


def _comparable(records: list[Record], name: str, stats: DatasetStats) -> list[Record]:
    """``records`` without the energy labels that the reference energies cannot predict
    (compositions the training compositions do not determine), with one warning."""
    records, dropped = without_unsupported_energies(records, stats.reference_support)
    if dropped:
        logger.warning("%d %s structures have compositions whose energy the training "
                       "compositions do not determine: their energies are not compared "
                       "(see data.reference_energies)", dropped, name)
    return records


def _split_counts(config: TrainConfig, n: int, separate_validation: bool,
                  separate_test: bool) -> tuple[int, int, int]:
    """(train, validation, test) counts; a split value below 1 is a fraction of ``n``."""
    split = config.data.split

    def count(value: float, separate: bool) -> int:
        if separate:
            return 0
        return int(round(value * n)) if value < 1 else int(value)

    n_validation = count(split.validation, separate_validation)
    n_test = count(split.test, separate_test)
    if n_validation + n_test >= n:
        raise ConfigError(f"data.split: {n_validation} validation + {n_test} test structures "
                          f"leave none of the {n} for training")
    return n - n_validation - n_test, n_validation, n_test


def mean_atoms(records: list[Record]) -> float:
    return float(np.mean([r.n_atoms for r in records])) if records else 1.0


def extra_scales(tasks: list[str], records: list[Record]) -> dict[str, float]:
    """RMS of the labels of tasks that DatasetStats has no scale for (extra heads)."""
    scales = {}
    for task in tasks:
        if task in TASK_SCALES:
            continue
        values = [np.ravel(r.label(task)) for r in records if r.has(task)]
        rms = float(np.sqrt(np.mean(np.concatenate(values) ** 2))) if values else 0.0
        scales[task] = rms if rms > 0 else 1.0
    return scales
