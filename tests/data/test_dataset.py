"""GraphDataset: a batch of N structures is the same as N batches of one."""

from __future__ import annotations

from dataclasses import replace

import ase.io
import numpy as np
import pytest
import torch

from tridft.data.dataset import GraphDataset
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.record import Record

CUTOFF = 3.0


@pytest.fixture(scope="module")
def records():
    """Ethanol molecules with labels missing here and there, a periodic cell, an extra."""
    ethanol = read_structures(ase.io.read(bundled_dataset_path(), index=":4"))
    ethanol[1] = replace(ethanol[1], polarizability=None, forces=None)
    ethanol[2] = replace(ethanol[2], energy=None, dipole=None, extra={"gap": np.array(4.2)})
    rng = np.random.default_rng(0)
    cell = np.array([[3.1, 0.0, 0.0], [0.4, 2.9, 0.0], [0.2, 0.3, 3.3]])
    crystal = Record(numbers=np.array([14, 14]),
                     positions=np.array([[0.0, 0, 0], [0.9, 1.1, 1.2]]),
                     cell=cell, pbc=np.ones(3, dtype=bool), energy=-10.0,
                     forces=rng.normal(size=(2, 3)), source="crystal")
    return ethanol[:2] + [crystal] + ethanol[2:]


def edges_of(batch, structure):
    """{(i, j, shift)} of one structure, atom indices local to it."""
    first = int(torch.sum(batch.n_atoms[:structure]))
    centers, neighbors = batch.edge_index
    mine = batch.structure_index[centers] == structure
    return sorted(zip((centers[mine] - first).tolist(), (neighbors[mine] - first).tolist(),
                      map(tuple, batch.cell_shifts[mine].tolist())))


def test_batch_of_n_equals_n_single_batches(records):
    dataset = GraphDataset(records, CUTOFF)
    together = dataset.collate(range(len(records)), dtype=torch.float64)
    offset = 0
    for k in range(len(records)):
        alone = dataset.collate([k], dtype=torch.float64)
        n = int(alone.n_atoms[0])
        atoms = slice(offset, offset + n)
        assert edges_of(together, k) == edges_of(alone, 0)
        assert torch.equal(together.numbers[atoms], alone.numbers)
        assert torch.equal(together.positions[atoms], alone.positions)
        assert torch.equal(together.forces[atoms], alone.forces)
        assert torch.equal(together.forces_mask[atoms], alone.forces_mask)
        for name in ("cell", "pbc", "energy", "energy_mask", "polarizability",
                     "polarizability_mask", "dipole", "dipole_mask"):
            assert torch.equal(getattr(together, name)[k], getattr(alone, name)[0]), name
        mine = together.structure_index[together.edge_index[0]] == k
        assert torch.allclose(together.edge_vectors()[mine].norm(dim=1).sort().values,
                              alone.edge_vectors().norm(dim=1).sort().values)
        offset += n
    values, mask = together.extra["gap"]
    assert mask.tolist() == [False, False, False, True, False] and float(values[3]) == 4.2
    assert float(together.edge_vectors().norm(dim=1).max()) < CUTOFF


def test_masks_follow_missing_labels(records):
    batch = GraphDataset(records, CUTOFF).collate(range(len(records)))
    assert batch.energy_mask.tolist() == [True, True, True, False, True]
    assert batch.polarizability_mask.tolist() == [True, False, False, True, True]
    assert not batch.forces_mask[9:18].any() and batch.forces_mask[:9].all()


def test_neighbor_lists_are_computed_once(records, monkeypatch):
    dataset = GraphDataset(records, CUTOFF)
    first = dataset.neighbor_list(2)
    calls = []
    monkeypatch.setattr("tridft.data.dataset.neighbor_list",
                        lambda *args, **kwargs: calls.append(args))
    assert dataset.neighbor_list(2) is first
    list(dataset.batches([2], batch_size=1))
    assert calls == []


def test_batches_cover_indices_and_shuffle_reproducibly(records):
    dataset = GraphDataset(records, CUTOFF)

    def sources(generator_seed):
        generator = torch.Generator().manual_seed(generator_seed)
        return [int(n) for batch in dataset.batches([0, 1, 2, 3, 4], batch_size=2, shuffle=True,
                                                    generator=generator)
                for n in batch.n_atoms]

    assert sources(1) == sources(1)
    sizes = [b.n_structures for b in dataset.batches(batch_size=2)]
    assert sizes == [2, 2, 1]
    assert [b.n_structures for b in dataset.batches(batch_size=2, drop_last=True)] == [2, 2]
