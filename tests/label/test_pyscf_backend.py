"""The PySCF backend: reference reproduction, analytic vs finite differences, bad input."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from tests.label.helpers import FAST, WATER, reference_path
from tridft.errors import InputError
from tridft.label.pyscf_backend import (LabelSettings, check_structure,
                                        finite_field_polarizability, label_structure)


@pytest.mark.slow
def test_default_settings_reproduce_the_reference_ethanol_labels():
    """Two frames of the reference file, relabelled with the defaults (~10 s each)."""
    for atoms in ase.io.read(str(reference_path()), index="0:800:400"):
        labels = label_structure(atoms.numbers, atoms.positions, LabelSettings())
        assert abs(labels["energy"] - atoms.get_potential_energy()) < 1e-3  # eV
        assert np.abs(labels["forces"] - atoms.get_forces()).max() < 1e-3  # eV/A
        reference_alpha = np.asarray(atoms.info["polarizability"], float).reshape(3, 3)
        assert np.abs(labels["polarizability"] - reference_alpha).max() < 1e-3  # A^3
        assert np.abs(labels["dipole"] - atoms.get_dipole_moment()).max() < 1e-3  # e*A
        assert labels["program"].startswith("pyscf ")
        assert labels["level_of_theory"].startswith("PBE/def2-SVP")


@pytest.mark.slow
def test_analytic_polarizability_equals_finite_field_on_water():
    settings = LabelSettings(properties=("polarizability",))
    analytic = label_structure(*WATER, settings)["polarizability"]
    numeric = finite_field_polarizability(*WATER, settings)
    assert np.allclose(analytic, analytic.T)
    assert np.abs(analytic - numeric).max() < 1e-3  # A^3
    assert 0.5 < np.trace(analytic) / 3 < 2.0  # def2-SVP water: ~0.8 A^3


def test_open_shell_polarizability_equals_finite_field():
    """OH radical, unrestricted KS: the ucphf route."""
    numbers, positions = [8, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]]
    settings = LabelSettings(basis="6-31g", multiplicity=2, properties=("polarizability",))
    analytic = label_structure(numbers, positions, settings)["polarizability"]
    numeric = finite_field_polarizability(numbers, positions, settings)
    assert np.abs(analytic - numeric).max() < 1e-3


def test_forces_are_minus_the_energy_gradient_in_ev_per_angstrom():
    numbers, positions = WATER
    labels = label_structure(numbers, positions, FAST)
    step = 1e-3  # Angstrom
    energies = []
    for sign in (+1, -1):
        moved = positions.copy()
        moved[1, 2] += sign * step
        energies.append(label_structure(numbers, moved, FAST)["energy"])
    numeric = -(energies[0] - energies[1]) / (2 * step)
    assert abs(labels["forces"][1, 2] - numeric) < 2e-3  # eV/A


def test_dipole_points_from_oxygen_to_hydrogens():
    labels = label_structure(*WATER, FAST)
    # Water's hydrogens sit at negative z: the dipole (from - to +) points down, ~0.3-0.4 e*A.
    assert labels["dipole"][2] < -0.2
    assert np.abs(labels["dipole"][:2]).max() < 1e-6


def test_properties_subset():
    labels = label_structure(*WATER, LabelSettings(basis="sto-3g", properties=("energy",)))
    assert "energy" in labels and "forces" not in labels and "polarizability" not in labels


def test_unconverged_scf_is_retried_with_the_second_order_solver():
    normal = label_structure(*WATER, FAST)
    retried = label_structure(*WATER, LabelSettings(basis="sto-3g", max_cycle=2))
    assert retried["scf_retried"] and not normal["scf_retried"]
    assert abs(retried["energy"] - normal["energy"]) < 1e-6
    assert np.abs(retried["polarizability"] - normal["polarizability"]).max() < 1e-5


@pytest.mark.parametrize("call, fragment", [
    (lambda: label_structure([8, 1], [[0, 0, 0], [0, 0, 0.97]], FAST),
     "9 electrons cannot have multiplicity 1"),
    (lambda: label_structure(*WATER, LabelSettings(basis="def2-nonsense")),
     "unknown basis set 'def2-nonsense'"),
    (lambda: label_structure(*WATER, LabelSettings(xc="NOTAFUNCTIONAL")),
     "unknown exchange-correlation functional 'NOTAFUNCTIONAL'"),
    (lambda: check_structure([14, 14], 0, 1, pbc=[True, True, True]), "periodic structure"),
    (lambda: LabelSettings(properties=("energy", "alpha")), "unknown properties"),
])
def test_bad_input_is_one_clear_line(call, fragment):
    with pytest.raises(InputError) as error:
        call()
    assert fragment in str(error.value) and "\n" not in str(error.value)
