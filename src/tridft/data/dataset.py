"""Records + a cutoff -> batches, each record's neighbour list computed once and kept.

>>> import numpy as np
>>> from tridft.data.record import Record
>>> water = Record(numbers=np.array([8, 1, 1]), energy=-2080.0,
...                positions=np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
>>> dataset = GraphDataset([water] * 5, cutoff=3.0)
>>> [batch.n_structures for batch in dataset.batches(batch_size=2)]
[2, 2, 1]

It also works as the dataset of a torch DataLoader over indices::

    DataLoader(range(len(dataset)), batch_size=32, shuffle=True, collate_fn=dataset.collate)
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from tridft.data.batch import Batch, collate
from tridft.data.neighbors import NeighborList, neighbor_list
from tridft.data.record import Record
from tridft.data.stats import DatasetStats, compute_stats


class GraphDataset:
    """Records with a cutoff (Angstrom); neighbour lists are computed lazily and cached."""

    def __init__(self, records: Sequence[Record], cutoff: float):
        self.records = list(records)
        self.cutoff = float(cutoff)
        self._neighbor_lists: list[NeighborList | None] = [None] * len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    def neighbor_list(self, index: int) -> NeighborList:
        """Edges of structure ``index`` within the cutoff (computed on first use)."""
        cached = self._neighbor_lists[index]
        if cached is None:
            record = self.records[index]
            full = neighbor_list(record.positions, self.cutoff, record.cell, record.pbc)
            # Compact dtypes halve the memory of the cache; collate widens them again.
            cached = NeighborList(full.centers.astype(np.int32),
                                  full.neighbors.astype(np.int32),
                                  full.shifts.astype(np.int32))
            self._neighbor_lists[index] = cached
        return cached

    def collate(self, indices: Sequence[int], dtype: torch.dtype | None = None) -> Batch:
        """One Batch of the structures ``indices`` (floats in ``dtype``, default torch's)."""
        indices = [int(i) for i in indices]
        return collate([self.records[i] for i in indices], self.cutoff,
                       neighbor_lists=[self.neighbor_list(i) for i in indices],
                       dtype=dtype or torch.get_default_dtype())

    def batches(self, indices: Sequence[int] | None = None, batch_size: int = 32,
                shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False, dtype: torch.dtype | None = None) -> Iterator[Batch]:
        """Batches of ``batch_size`` structures from ``indices`` (default: all), in order or
        shuffled with ``generator`` (a torch.Generator, for reproducible epochs)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        order = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if shuffle:
            order = order[torch.randperm(len(order), generator=generator).numpy()]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            yield self.collate(chunk, dtype=dtype)

    def stats(self, indices: Sequence[int] | None = None,
              isolated_atoms: dict | None = None) -> DatasetStats:
        """DatasetStats of the structures ``indices`` (pass the training indices only);
        ``isolated_atoms`` ({symbol: eV}) replace the fitted reference energies."""
        indices = range(len(self)) if indices is None else [int(i) for i in indices]
        return compute_stats([self.records[i] for i in indices], self.cutoff,
                             neighbor_lists=[self.neighbor_list(i) for i in indices],
                             isolated_atoms=isolated_atoms)
