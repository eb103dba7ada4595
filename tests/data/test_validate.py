"""Every bad input is one InputError naming the file, the structure and the field."""

from __future__ import annotations

import logging

import ase
import numpy as np
import pytest

from tests.data.files import BAD_INPUTS, WATER, frame, write_bad
from tridft.data.io import read_structures
from tridft.errors import InputError


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_file_is_located_by_file_structure_and_field(tmp_path, name):
    bad = BAD_INPUTS[name]
    path = write_bad(tmp_path, name)
    with pytest.raises(InputError) as caught:
        read_structures(path)
    error = caught.value
    message = str(error)
    assert "\n" not in message
    assert error.path == str(path) and str(path) in message
    assert error.index == bad.index
    if bad.index is not None:
        assert f"structure {bad.index}" in message
    assert error.field == bad.field
    if bad.field is not None:
        assert f"field {bad.field}" in message
    assert bad.fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_structures(tmp_path / "absent.extxyz")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.extxyz"
    path.write_text("")
    with pytest.raises(InputError, match="empty.extxyz"):
        read_structures(path)


def test_atomic_number_above_118_from_atoms():
    atoms = ase.Atoms(numbers=[1, 200], positions=[[0, 0, 0], [1, 0, 0]])
    with pytest.raises(InputError, match="structure 0: field numbers: atom 1 has atomic "
                                         "number 200"):
        read_structures([atoms])


def test_small_asymmetry_is_symmetrized_with_one_warning_counting_structures(tmp_path, caplog):
    symmetric = frame(WATER, 'polarizability="1 0 0 0 1 0 0 0 1"')
    slightly = frame(WATER, 'polarizability="1 0.001 0 0 1 0 0 0 1"')  # 4e-4 relative
    path = tmp_path / "alpha.extxyz"
    path.write_text(slightly + symmetric + slightly)
    with caplog.at_level(logging.WARNING):
        records = read_structures(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 of 3 structures" in warnings[0]
    assert all(np.array_equal(r.polarizability, r.polarizability.T) for r in records)
    assert records[0].polarizability[0, 1] == pytest.approx(0.0005)


def test_atoms_apart_across_the_boundary_of_a_molecule_are_fine(tmp_path):
    # The same positions as the periodic failure, without a cell: 2.95 Angstrom apart.
    path = tmp_path / "molecule.extxyz"
    path.write_text(frame([("O", 0.02, 1.5, 1.5), ("H", 2.97, 1.5, 1.5)]))
    assert read_structures(path)[0].cell is None
