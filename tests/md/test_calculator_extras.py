"""The calculator's stress (ASE sign and Voigt order), uncertainties and uncertainty watch."""

import ase
import numpy as np
import pytest
import torch

from tests.md.helpers import ethanol_atoms, perturbed_model
from tests.physics.helpers import ETHANOL_FILE, water_box_atoms
from tridft.data.io import read_structures
from tridft.md.calculator import TriDFTCalculator
from tridft.md.uncertainty_watch import UncertaintyExceeded
from tridft.model.inference import UncertaintyUnavailable
from tridft.uncertainty.calibrate import fit_uncertainty


@pytest.fixture(scope="module")
def calibrated():
    model = perturbed_model(seed=4)
    records = read_structures(ETHANOL_FILE)[:40]
    model.uncertainty = fit_uncertainty(model, records[:25], records[25:])
    return model


def finite_difference_stress(atoms, component, step=1e-5):
    """ASE's definition: stress_ab = (1/V) dE/d(eps_ab), cell and atoms scaled together."""
    a, b = component
    energies = []
    for sign in (1, -1):
        strained = atoms.copy()
        strained.calc = atoms.calc
        deformation = np.eye(3)
        deformation[a, b] += 0.5 * sign * step
        deformation[b, a] += 0.5 * sign * step
        strained.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
        energies.append(strained.get_potential_energy())
    return (energies[0] - energies[1]) / (2 * step * atoms.get_volume())


def test_get_stress_is_ases_stress(calibrated):
    atoms = water_box_atoms()
    atoms.calc = TriDFTCalculator(calibrated, forces="conservative")
    stress = atoms.get_stress()  # Voigt: xx yy zz yz xz xy
    assert stress.shape == (6,) and np.abs(stress).max() > 1e-5
    full = atoms.get_stress(voigt=False)
    for (a, b) in ((0, 0), (1, 2), (0, 1)):
        assert full[a, b] == pytest.approx(finite_difference_stress(atoms, (a, b)),
                                           abs=1e-8)


def test_a_molecule_has_zero_stress_and_energy_unchanged_by_asking(calibrated):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(calibrated)
    energy = atoms.get_potential_energy()
    assert np.all(atoms.get_stress() == 0)
    assert atoms.get_potential_energy() == energy


def test_uncertainties_in_the_results(calibrated):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(calibrated, uncertainty=True)
    atoms.get_potential_energy()
    results = atoms.calc.results
    assert results["forces_uncertainty"].shape == (9,)
    assert results["forces_uncertainty_max"] == pytest.approx(results["forces_uncertainty"].max())
    for key in ("energy_uncertainty", "polarizability_uncertainty"):
        assert np.ndim(results[key]) == 0 and results[key] > 0
    assert "forces_uncertainty" in atoms.calc.per_atom_properties


def test_the_watch_stops_a_compressed_molecule(calibrated):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(calibrated, uncertainty_limit=1e9, on_uncertainty="stop")
    atoms.get_potential_energy()
    limit = 1.01 * atoms.calc.results["forces_uncertainty_max"]
    atoms.calc = TriDFTCalculator(calibrated, uncertainty_limit=limit, on_uncertainty="stop")
    atoms.get_forces()  # fine
    centre = atoms.positions.mean(axis=0)
    atoms.positions = (atoms.positions - centre) * 0.8 + centre
    with pytest.raises(UncertaintyExceeded, match="outside what the model knows"):
        atoms.get_forces()


def test_warn_counts_instead_of_stopping(calibrated, caplog):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(calibrated, uncertainty_limit=1e-9, on_uncertainty="warn")
    atoms.get_forces()
    atoms.positions += 0.01
    atoms.get_forces()
    assert atoms.calc.watch.exceeded == 2
    assert "reported once" in caplog.text and caplog.text.count("force uncertainty") == 1


def test_asking_for_uncertainty_without_calibration_fails_at_once():
    with pytest.raises(UncertaintyUnavailable):
        TriDFTCalculator(perturbed_model(seed=1), uncertainty=True)
