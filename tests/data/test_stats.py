"""Dataset statistics: reference energies recover known per-element energies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tridft.data.record import Record
from tridft.data.stats import DatasetStats, compute_stats
from tridft.errors import CheckpointError

TRUE_REFERENCES = {1: -13.6, 6: -1030.0, 8: -2040.0}  # eV


def molecule(rng, counts: dict[int, int], noise: float = 0.0, **labels) -> Record:
    numbers = np.repeat(list(counts), list(counts.values()))
    positions = rng.uniform(0, 1.5 * len(numbers) ** (1 / 3), size=(len(numbers), 3))
    energy = sum(TRUE_REFERENCES[z] * n for z, n in counts.items()) + noise * rng.normal()
    return Record(numbers=numbers, positions=positions, energy=energy, **labels)


def test_reference_energies_recover_per_element_energies():
    rng = np.random.default_rng(0)
    records = [molecule(rng, {1: int(rng.integers(1, 9)), 6: int(rng.integers(0, 4)),
                              8: int(rng.integers(1, 3))}, noise=0.01) for _ in range(60)]
    stats = compute_stats(records, cutoff=3.0)
    assert stats.elements == [1, 6, 8]
    for z, energy in TRUE_REFERENCES.items():
        assert stats.reference_energies[z] == pytest.approx(energy, abs=0.02)
    assert abs(stats.energy_per_atom_shift) < 0.01
    assert stats.energy_per_atom_scale < 0.01


def test_same_formula_everywhere_is_stable():
    rng = np.random.default_rng(1)
    records = [molecule(rng, {6: 2, 1: 6, 8: 1}, noise=0.1) for _ in range(20)]
    stats = compute_stats(records, cutoff=3.0)
    mean_energy = np.mean([r.energy for r in records])
    fitted = 2 * stats.reference_energies[6] + 6 * stats.reference_energies[1] \
        + stats.reference_energies[8]
    assert fitted == pytest.approx(mean_energy, abs=1e-4)
    assert all(np.isfinite(list(stats.reference_energies.values())))
    assert abs(stats.energy_per_atom_shift) < 1e-5


def test_scales_and_means_of_labels():
    rng = np.random.default_rng(2)
    alpha = np.diag([1.0, 2.0, 3.0])
    records = [molecule(rng, {1: 2}, forces=np.full((2, 3), 0.5), polarizability=alpha,
                        dipole=np.array([0.0, 0.0, 0.3])),
               molecule(rng, {1: 4})]
    stats = compute_stats(records, cutoff=10.0)
    assert stats.forces_rms == pytest.approx(0.5)
    assert stats.polarizability_per_atom_mean == pytest.approx(1.0)  # trace/3 = 2 over 2 atoms
    per_atom_deviation = np.diag([-0.5, 0.0, 0.5])
    assert stats.polarizability_scale == pytest.approx(np.sqrt(np.mean(per_atom_deviation**2)))
    assert stats.dipole_scale == pytest.approx(np.sqrt(0.09 / 3))
    assert stats.label_counts == {"energy": 2, "forces": 1, "polarizability": 1, "dipole": 1}
    assert stats.average_neighbors == pytest.approx((2 * 1 + 4 * 3) / 6)
    assert stats.n_structures == 2


def test_missing_labels_give_neutral_defaults():
    rng = np.random.default_rng(3)
    records = [Record(numbers=np.array([1]), positions=rng.normal(size=(1, 3)))]
    stats = compute_stats(records, cutoff=3.0)
    assert stats.reference_energies == {}
    assert (stats.energy_per_atom_scale, stats.forces_rms, stats.polarizability_scale,
            stats.dipole_scale) == (1.0, 1.0, 1.0, 1.0)
    assert (stats.energy_per_atom_shift, stats.polarizability_per_atom_mean) == (0.0, 0.0)


def test_dict_round_trip_through_json():
    rng = np.random.default_rng(4)
    stats = compute_stats([molecule(rng, {1: 2, 8: 1}), molecule(rng, {1: 4, 8: 2})],
                          cutoff=3.0)
    data = json.loads(json.dumps(stats.to_dict()))
    assert data["reference_energies"]["numbers"] == [1, 8]
    assert DatasetStats.from_dict(data) == stats
    assert stats.reference_energy_array()[8] == stats.reference_energies[8]
    with pytest.raises(CheckpointError, match="'surprise'"):
        DatasetStats.from_dict({**data, "surprise": 1})
