"""Harmonic frequencies: units, projections, and agreement with PySCF's own analysis."""

import json
from pathlib import Path

import numpy as np
import pytest

from tridft.md.calculator import TriDFTCalculator
from tridft.spectra.harmonic import (finite_difference_hessian, harmonic_frequencies,
                                model_hessian)
from tridft.units import SQRT_EV_PER_A2_AMU_TO_CM1
from tests.md.helpers import ethanol_atoms, perturbed_model
from tests.physics.helpers import random_orthogonal

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ethanol_pbe_def2svp_harmonic.json"


@pytest.fixture(scope="module")
def reference():
    return json.loads(FIXTURE.read_text())


def test_a_diatomic_spring_has_the_textbook_frequency():
    # Carbon monoxide: k = 1902 N/m = 118.7 eV/Angstrom^2, harmonic wavenumber 2170 cm^-1.
    k, masses = 1902.0 / 16.0217663, np.array([12.0, 15.995])  # eV/Angstrom^2, amu
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    positions = np.array([np.zeros(3), 1.13 * axis])
    block = k * np.outer(axis, axis)
    hessian = np.block([[block, -block], [-block, block]])
    result = harmonic_frequencies(hessian, masses, positions)
    reduced_mass = masses.prod() / masses.sum()
    assert result.frequencies_cm1.shape == (1,)  # linear: 3N - 5 = 1
    assert result.frequencies_cm1[0] == pytest.approx(
        SQRT_EV_PER_A2_AMU_TO_CM1 * np.sqrt(k / reduced_mass), rel=1e-10)
    assert result.frequencies_cm1[0] == pytest.approx(2170.0, rel=2e-3)
    np.testing.assert_allclose(abs(result.modes[0, 0] @ axis), np.linalg.norm(result.modes[0, 0]))


def test_ethanol_frequencies_match_pyscf_harmonic_analysis(reference):
    """Same DFT Hessian, two independent projections and unit conversions."""
    result = harmonic_frequencies(np.array(reference["hessian_ev_per_angstrom2"]),
                                  np.array(reference["masses_amu"]),
                                  np.array(reference["positions_angstrom"]))
    assert len(result.frequencies_cm1) == 21
    np.testing.assert_allclose(result.frequencies_cm1, reference["frequencies_cm1"], atol=0.05)


def test_frequencies_do_not_depend_on_orientation_or_position(reference):
    hessian = np.array(reference["hessian_ev_per_angstrom2"])
    masses = np.array(reference["masses_amu"])
    positions = np.array(reference["positions_angstrom"])
    rotation = random_orthogonal(np.random.default_rng(2))
    big_rotation = np.kron(np.eye(len(masses)), rotation)  # acts on every atom's xyz
    turned = harmonic_frequencies(big_rotation @ hessian @ big_rotation.T, masses,
                                  positions @ rotation.T + [3.0, -1.0, 2.0])
    np.testing.assert_allclose(turned.frequencies_cm1,
                               harmonic_frequencies(hessian, masses, positions).frequencies_cm1,
                               atol=1e-6)


def test_autograd_hessian_equals_finite_differences_of_conservative_forces():
    model = perturbed_model(seed=2)
    atoms = ethanol_atoms()
    exact = model_hessian(model, atoms)
    atoms.calc = TriDFTCalculator(model, forces="conservative")
    numerical = finite_difference_hessian(atoms, delta=1e-3)
    assert exact.shape == (27, 27)
    np.testing.assert_allclose(exact, exact.T, atol=1e-12)
    # Central differences are off by O(delta^2) = 1e-6 times third derivatives.
    np.testing.assert_allclose(numerical, exact, atol=1e-4 * np.abs(exact).max())
    np.testing.assert_allclose(atoms.positions, ethanol_atoms().positions)  # restored


def test_rigid_motions_cost_nothing_in_the_model_hessian():
    """Translation invariance of the model: every row of its Hessian sums to zero per axis."""
    hessian = model_hessian(perturbed_model(seed=2), ethanol_atoms())
    per_axis = hessian.reshape(27, 9, 3).sum(axis=1)
    np.testing.assert_allclose(per_axis, 0.0, atol=1e-9 * np.abs(hessian).max())


def test_the_md_benchmark_quick_mode_runs(tmp_path):
    """benchmarks/md_ethanol.py --quick on a small model: every documented number is there."""
    import importlib.util

    from tridft.model.persistence import save_model

    script = Path(__file__).parents[2] / "benchmarks" / "md_ethanol.py"
    spec = importlib.util.spec_from_file_location("md_ethanol", script)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    save_model(perturbed_model(seed=2), tmp_path / "model.pt")
    out = tmp_path / "md.json"
    assert benchmark.main([str(tmp_path / "model.pt"), "--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert len(results["harmonic"]["model_cm1"]) == 21
    assert len(results["harmonic"]["model_raman_activity"]) == 21
    assert -1 <= results["harmonic"]["raman_pearson_r"] <= 1
    assert [run["forces"] for run in results["nve"]] == [
        "conservative", "direct"] + [f"mts k={k}" for k in benchmark.MTS_EVERY] \
        + [f"mts springs k={k}" for k in benchmark.SPRING_EVERY]
    assert all(run["steps"] == 100 and run["steps_per_s"] > 0 for run in results["nve"])
