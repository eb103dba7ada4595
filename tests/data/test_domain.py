"""The training domain: recorded from the training structures, checked on everything else."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from tridft.data.domain import Domain, DomainCheck
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.record import Record
from tridft.data.stats import fit_reference_energies
from tridft.data.unit_hint import unit_hints
from tridft.errors import InputError


@pytest.fixture(scope="module")
def records():
    return read_structures(bundled_dataset_path())[:40]


@pytest.fixture(scope="module")
def domain(records):
    references = fit_reference_energies(records[:30])
    plain = Domain.from_records(records[:30], 5.0, references=references)
    return Domain.from_dict(json.loads(json.dumps(plain.to_dict())))  # as saved in metadata


def changed(record: Record, factor: float = 1.0, cell: float | None = None) -> Record:
    positions = record.positions * factor
    if cell is not None:
        positions = positions - positions.mean(axis=0) + cell / 2
    return Record(numbers=record.numbers, positions=positions,
                  cell=None if cell is None else np.eye(3) * cell,
                  pbc=np.full(3, cell is not None))


def test_what_training_saw_is_inside(domain, records):
    check = DomainCheck(domain, "data.extxyz")
    check.structures(records[30:])
    assert check.n_outside == 0
    assert domain.neighbors == [8, 8] and sorted(domain.composition) == ["1", "6", "8"]


@pytest.mark.parametrize("factor, category", [(0.8, "short"), (1.6, "sparse")])
def test_distorted_molecules_are_flagged(domain, records, factor, category):
    assert category in DomainCheck(domain, "x").structure(changed(records[0], factor), 0)


@pytest.mark.parametrize("factor, cell, field", [(0.4, None, "positions"),
                                                 (1.0, 2.0, "positions")])
def test_what_cannot_be_meaningful_is_refused(domain, records, factor, cell, field):
    with pytest.raises(InputError, match=f"x: structure 3: field {field}"):
        DomainCheck(domain, "x").structure(changed(records[0], factor, cell), 3)


def test_a_periodic_box_for_a_model_of_molecules_is_flagged(domain, records):
    assert "periodic" in DomainCheck(domain, "x").structure(changed(records[0], cell=20.0))


@pytest.mark.parametrize("outputs, message", [
    ({"energy": float("nan")}, "NaN for energy"),
    ({"energy": 1.4e31}, "no physical structure"),
    ({"forces": np.full((9, 3), np.inf)}, "infinite value for forces"),
])
def test_non_finite_and_absurd_predictions_are_refused(domain, records, outputs, message):
    with pytest.raises(InputError, match=message):
        DomainCheck(domain, "x").prediction(records[0], outputs, 0)


def test_predictions_beyond_the_training_labels_are_flagged(domain, records):
    alpha = -3975.0 * np.eye(3)
    found = DomainCheck(domain, "x").prediction(records[0], {"polarizability": alpha})
    assert found == {"polarizability"}


def test_one_warning_per_file_with_counts(domain, records, caplog):
    check = DomainCheck(domain, "some.extxyz")
    for index, factor in enumerate([1.0, 0.8, 0.8, 1.6]):
        check.structure(changed(records[index], factor), index)
    with caplog.at_level(logging.WARNING):
        assert check.report() == 3
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("some.extxyz: 3 of 4 structures lie outside")
    assert "2 with atoms closer than in training" in message


def test_without_a_recorded_domain_only_the_outputs_are_checked(records):
    check = DomainCheck(None, "x", elements=[1, 6, 8])
    assert check.structure(changed(records[0], 0.4)) == set()
    with pytest.raises(InputError, match="element N"):
        check.structure(Record(numbers=np.array([7]), positions=np.zeros((1, 3))))
    with pytest.raises(InputError):
        check.prediction(records[0], {"energy": float("nan")})


def test_labels_in_other_units_get_a_hint(records):
    from tridft.data.stats import compute_stats

    stats = compute_stats(records[:30], 5.0).to_dict()
    assert unit_hints(stats, records[30:], "test.extxyz") == []
    in_kcal = [Record(numbers=r.numbers, positions=r.positions, energy=r.energy * 23.0605,
                      forces=r.forces * 23.0605) for r in records[30:]]
    hints = unit_hints(stats, in_kcal, "test.extxyz")
    assert any("--units energy=kcal/mol" in hint for hint in hints), hints
