"""The DFT Raman/IR reference fixture is internally consistent and matches the harmonic one."""

import json
from pathlib import Path

import numpy as np
import pytest

from tridft.spectra.harmonic import harmonic_frequencies

FIXTURES = Path(__file__).parents[1] / "fixtures"
RAMAN = FIXTURES / "ethanol_pbe_def2svp_raman.json"
HARMONIC = FIXTURES / "ethanol_pbe_def2svp_harmonic.json"


@pytest.fixture(scope="module")
def raman():
    return json.loads(RAMAN.read_text())


@pytest.fixture(scope="module")
def harmonic():
    return json.loads(HARMONIC.read_text())


def test_all_21_modes_with_frequencies_of_the_harmonic_fixture(raman, harmonic):
    assert raman["mode_indices"] == list(range(21))
    for key in ("frequencies_cm1", "dalpha_dq", "dmu_dq", "a2", "gamma2", "raman_activity",
                "depolarisation_ratio", "ir_intensity_km_mol", "displacements"):
        assert len(raman[key]) == 21, key
    np.testing.assert_allclose(raman["frequencies_cm1"], harmonic["frequencies_cm1"], atol=1.0)
    assert raman["settings"]["xc"] == harmonic["settings"]["xc"]
    assert raman["settings"]["basis"] == harmonic["settings"]["basis"]


def test_invariants_recomputed_from_the_stored_derivatives(raman):
    dalpha = np.asarray(raman["dalpha_dq"])  # (21, 3, 3)
    assert dalpha.shape == (21, 3, 3)
    np.testing.assert_allclose(dalpha, dalpha.transpose(0, 2, 1), atol=1e-8)
    a = np.trace(dalpha, axis1=1, axis2=2) / 3
    traceless = dalpha - a[:, None, None] * np.eye(3)
    gamma2 = 1.5 * np.einsum("kij,kij->k", traceless, traceless)
    np.testing.assert_allclose(raman["a2"], a**2, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(raman["gamma2"], gamma2, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(raman["raman_activity"], 45 * a**2 + 7 * gamma2,
                               rtol=1e-10, atol=1e-14)
    rho = np.asarray(raman["depolarisation_ratio"])
    assert np.all(rho >= 0) and np.all(rho <= 0.75 + 1e-12)
    np.testing.assert_allclose(rho, 3 * gamma2 / (45 * a**2 + 4 * gamma2), rtol=1e-10)
    dmu = np.asarray(raman["dmu_dq"])
    np.testing.assert_allclose(raman["ir_intensity_km_mol"],
                               974.88 * np.einsum("ki,ki->k", dmu, dmu), rtol=1e-5)


def test_stored_displacements_are_the_normal_modes_of_the_hessian(raman, harmonic):
    masses = np.asarray(harmonic["masses_amu"])
    d = np.asarray(raman["displacements"]).reshape(21, -1)  # Angstrom per Angstrom sqrt(amu)
    e = d * np.repeat(np.sqrt(masses), 3)
    np.testing.assert_allclose(e @ e.T, np.eye(21), atol=1e-8)
    modes = harmonic_frequencies(np.asarray(harmonic["hessian_ev_per_angstrom2"]), masses,
                                 np.asarray(harmonic["positions_angstrom"])).modes
    unit = d / np.linalg.norm(d, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs(np.einsum("ki,ki->k", unit, modes.reshape(21, -1))), 1.0,
                               atol=1e-6)


def test_physically_sensible(raman):
    frequencies = np.asarray(raman["frequencies_cm1"])
    activity = np.asarray(raman["raman_activity"])
    rho = np.asarray(raman["depolarisation_ratio"])
    # The strongest Raman bands are the X-H stretches.
    assert frequencies[np.argmax(activity)] > 2800
    # The C-C-O stretch near 880 cm^-1 is polarised (0.47 with def2-SVP, which has no
    # diffuse functions; 0.31 with aug-cc-pVDZ at the same geometry and modes).
    cco = np.argmin(np.abs(frequencies - 880))
    assert rho[cco] < 0.6
    # The step is small enough: halving it changes the strongest activity very little.
    assert abs(raman["checks"]["half_step"]["raman_activity_rel_diff"]) < 1e-3
