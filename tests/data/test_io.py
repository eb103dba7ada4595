"""Reading structures: the reference files in their own units, label lookup, options."""

from __future__ import annotations

import logging

import ase
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from tests.data.files import GOOD, WATER, frame, shared_file
from tridft.data.io import KeyMap, bundled_dataset_path, read_structures
from tridft.data.options import parse_keys, parse_units
from tridft.errors import ConfigError
from tridft.units import BOHR3_ANGSTROM3, UnitSpec

WATER_MONOMER_KEYS = "energy=potential,dipole=mu,polarizability=alpha"
WATER_MONOMER_UNITS = "energy=Hartree,polarizability=bohr^3,dipole=e*bohr"


@pytest.fixture(scope="module")
def ethanol():
    return read_structures(bundled_dataset_path())


# --- the reference data ------------------------------------------------------------------


def test_bundled_dataset_is_800_ethanol_with_all_four_labels(ethanol):
    assert len(ethanol) == 800
    first = ethanol[0]
    assert first.numbers.tolist() == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert first.cell is None and not first.pbc.any()
    assert first.forces.shape == (9, 3)
    assert first.polarizability.shape == (3, 3)
    assert first.dipole.shape == (3,)
    assert first.source.endswith("ethanol_pbe_def2svp_800.extxyz:0")


def test_rmd17_in_kcal_per_mol_agrees_with_bundled_ev_file(ethanol):
    rmd17 = read_structures(shared_file("rmd17_ethanol_800_kcal.xyz"),
                            units=parse_units("energy=kcal/mol"))
    assert len(rmd17) == len(ethanol)
    positions = np.stack([r.positions for r in rmd17])
    assert np.allclose(positions, np.stack([r.positions for r in ethanol]), atol=1e-6)
    force_error = np.abs(np.stack([r.forces for r in rmd17])
                         - np.stack([r.forces for r in ethanol]))
    # Same functional and basis, two codes: 0.85 meV/A on average (data README).
    assert force_error.mean() < 5e-3
    energy_difference = np.array([a.energy - b.energy for a, b in zip(rmd17, ethanol)])
    # A constant offset of 5.6 meV with a spread of 0.6 meV: the kcal/mol factor is right.
    assert energy_difference.std() < 2e-3
    assert rmd17[0].polarizability is None and rmd17[0].dipole is None


def test_water_monomers_in_atomic_units_are_molecules_with_converted_labels():
    records = read_structures(shared_file("water_monomer_alpha_au.xyz"),
                              keys=parse_keys(WATER_MONOMER_KEYS),
                              units=parse_units(WATER_MONOMER_UNITS))
    assert len(records) == 1000
    first = records[0]
    assert first.cell is None and not first.pbc.any()  # all-zero Lattice: a molecule
    assert first.polarizability[0, 0] == pytest.approx(9.812358 * BOHR3_ANGSTROM3)
    assert first.energy == pytest.approx(-76.3489282585 * 27.211386245988)
    assert first.dipole[0] == pytest.approx(-0.734398 * 0.529177210903)
    assert first.forces is None


def test_deepmd_water_cells_are_periodic():
    records = read_structures(shared_file("deepmd_water_192_energy_forces.extxyz"))
    assert len(records) == 400
    assert all(r.is_periodic and r.cell is not None and r.n_atoms == 192 for r in records)
    assert records[0].cell[0, 0] == pytest.approx(12.444661140441895)
    assert records[0].forces.shape == (192, 3) and records[0].polarizability is None


def test_deepmd_polarizability_is_symmetrized_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        records = read_structures(shared_file("deepmd_water_192_polarizability.extxyz"))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "160 of 160 structures" in warnings[0].getMessage()
    alpha = records[0].polarizability
    assert np.allclose(alpha, alpha.T)
    assert alpha[0, 1] == pytest.approx((2.128000020980835 + 2.0739998817443848) / 2)
    assert records[0].energy is None and records[0].is_periodic


def test_deepmd_gas_phase_molecules():
    records = read_structures(shared_file("deepmd_gas_cho_energy_forces.extxyz"))
    assert len(records) == 2062
    assert not any(r.is_periodic for r in records)
    assert {int(z) for r in records for z in r.numbers} <= {1, 6, 8}


# --- where labels live, units, keys --------------------------------------------------------


def test_labels_from_info_arrays_and_calculator_results():
    atoms = ase.Atoms("OH2", positions=[p[1:] for p in WATER])
    atoms.info["alpha"] = np.eye(3)  # a 3x3 in info
    atoms.arrays["grad"] = np.ones((3, 3))  # forces in the arrays under another name
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0, dipole=[0.0, 0.0, 0.1])
    (record,) = read_structures([atoms], keys=KeyMap(polarizability="alpha", forces="grad"))
    assert record.energy == -1.0
    assert np.array_equal(record.forces, np.ones((3, 3)))
    assert np.array_equal(record.polarizability, np.eye(3))
    assert record.dipole.tolist() == [0.0, 0.0, 0.1]
    assert record.source == "<atoms>:0"


def test_missing_labels_are_none_and_none_key_skips_a_label(tmp_path):
    path = tmp_path / "plain.extxyz"
    path.write_text(GOOD)
    (record,) = read_structures(path)
    assert record.forces is None and record.dipole is None
    (record,) = read_structures(path, keys=parse_keys("polarizability=none"))
    assert record.energy == -2080.5 and record.polarizability is None


def test_length_unit_scales_positions_cell_and_forces(tmp_path):
    path = tmp_path / "bohr.extxyz"
    path.write_text(frame([("H", 0, 0, 0), ("H", 2.0, 0, 0)],
                          'energy=-1.0 Lattice="10 0 0 0 10 0 0 0 10" pbc="T T T"',
                          "species:S:1:pos:R:3:forces:R:3", [(0.1, 0, 0), (-0.1, 0, 0)]))
    (record,) = read_structures(path, units=parse_units("energy=Hartree,length=bohr"))
    assert record.positions[1, 0] == pytest.approx(2.0 * 0.529177210903)
    assert record.cell[0, 0] == pytest.approx(10 * 0.529177210903)
    assert record.forces[0, 0] == pytest.approx(0.1 * 27.211386245988 / 0.529177210903)


def test_extra_labels_per_structure_and_per_atom(tmp_path):
    path = tmp_path / "extra.extxyz"
    path.write_text(frame(WATER, "energy=1.0 gap=4.5", "species:S:1:pos:R:3:q:R:1",
                          [(-0.8,), (0.4,), (0.4,)]))
    (record,) = read_structures(path, keys=parse_keys("extra.gap=gap,extra.charges=q"))
    assert record.extra["gap"] == pytest.approx(4.5)
    assert record.atom_extra["charges"].tolist() == [-0.8, 0.4, 0.4]


def test_ase_database_keeps_key_value_pairs_and_data(tmp_path):
    from ase.db import connect

    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=-31.0, forces=np.zeros((2, 3)))
    path = tmp_path / "set.db"
    connect(str(path)).write(atoms, potential=-1.1, data={"alpha": np.eye(3).ravel()})
    (record,) = read_structures(path, keys=parse_keys("polarizability=alpha"))
    assert record.energy == -31.0 and np.array_equal(record.polarizability, np.eye(3))
    (record,) = read_structures(path, keys=parse_keys("energy=potential"),
                                units=parse_units("energy=Hartree"))
    assert record.energy == pytest.approx(-1.1 * 27.211386245988)


# --- the option parsers ---------------------------------------------------------------------


def test_parse_keys_and_units():
    keys = parse_keys(WATER_MONOMER_KEYS)
    assert (keys.energy, keys.forces, keys.polarizability, keys.dipole) == \
        ("potential", "forces", "alpha", "mu")
    units = parse_units("energy=Hartree, length=bohr,polarizability=bohr^3,dipole=e*bohr")
    assert units == UnitSpec("Hartree", "bohr", "bohr^3", "e*bohr")
    assert parse_keys(None) == KeyMap() and parse_units("") == UnitSpec()


@pytest.mark.parametrize("parse, text, words", [
    (parse_units, "energy=Hartre", ["--units", "unknown energy unit 'Hartre'"]),
    (parse_units, "forces=eV/A", ["--units", "energy= and length="]),
    (parse_units, "temperature=K", ["--units", "unknown quantity 'temperature'"]),
    (parse_units, "energy", ["--units", "expected name=value"]),
    (parse_keys, "enrgy=potential", ["--keys", "unknown label 'enrgy'"]),
    (parse_keys, "energy=a,energy=b", ["--keys", "'energy' is given twice"]),
])
def test_bad_units_or_keys_option_names_the_option(parse, text, words):
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert all(word in str(caught.value) for word in words)


def test_unknown_unit_given_in_code_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown energy unit 'furlong'"):
        read_structures(bundled_dataset_path(), units=UnitSpec(energy="furlong"))
