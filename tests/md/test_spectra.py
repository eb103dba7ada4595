"""Spectra of synthetic signals whose lines are known."""

import numpy as np
import pytest

from tridft.errors import InputError
from tridft.spectra.correlation import (RamanGeometry, compute_spectra, find_peaks,
                               quantum_correction, sampling_interval)
from tridft.units import BOLTZMANN_EV_PER_K, HBAR_EV_S, INVERSE_FS_TO_CM1, SPEED_OF_LIGHT_CM_PER_S

DT_FS = 1.0
N_FRAMES = 8000  # 8 ps: correlation length 4 ps, resolution 8.3 cm^-1


def cosine(wavenumber_cm1: float, phase: float = 0.0) -> np.ndarray:
    time_fs = np.arange(N_FRAMES) * DT_FS
    return np.cos(2 * np.pi * wavenumber_cm1 / INVERSE_FS_TO_CM1 * time_fs + phase)


def fake_polarizability(isotropic_cm1: list[float], anisotropic_cm1: list[float]) -> np.ndarray:
    """(T, 3, 3): a static anisotropic tensor plus breathing (trace) and traceless lines."""
    alpha = np.tile(np.diag([5.0, 4.0, 3.5]), (N_FRAMES, 1, 1))
    for k, nu in enumerate(isotropic_cm1):
        alpha += 0.1 * cosine(nu, phase=k)[:, None, None] * np.eye(3)
    for k, nu in enumerate(anisotropic_cm1):
        wave = 0.05 * cosine(nu, phase=2 * k + 1)
        alpha[:, 0, 1] += wave
        alpha[:, 1, 0] += wave
        alpha[:, 2, 2] += wave  # a diagonal part with a trace ...
        alpha[:, 0, 0] -= wave  # ... that cancels: still traceless
    return alpha


def test_raman_lines_are_found_within_the_resolution_in_the_right_channel():
    isotropic, anisotropic = [883.3, 2911.7], [431.9, 1456.2, 3671.4]
    spectra = compute_spectra(fake_polarizability(isotropic, anisotropic), DT_FS,
                              temperature_K=None)
    resolution = spectra.resolution_cm1
    assert resolution == pytest.approx(INVERSE_FS_TO_CM1 / (N_FRAMES // 2 * DT_FS))
    nu = spectra.frequency_cm1
    iso_peaks = find_peaks(nu, spectra.raman_iso)
    aniso_peaks = find_peaks(nu, spectra.raman_aniso)
    total_peaks = find_peaks(nu, spectra.raman_total)
    assert len(iso_peaks) == 2 and len(aniso_peaks) == 3 and len(total_peaks) == 5
    np.testing.assert_allclose(iso_peaks, isotropic, atol=resolution / 2)
    np.testing.assert_allclose(aniso_peaks, anisotropic, atol=resolution / 2)
    np.testing.assert_allclose(total_peaks, sorted(isotropic + anisotropic), atol=resolution / 2)
    np.testing.assert_allclose(spectra.raman_total,  # the default: linear light, total
                               spectra.raman_iso + 7 / 45 * spectra.raman_aniso)


def test_the_classical_spectrum_integrates_to_the_variance():
    """Wiener-Khinchin: the integral of the spectrum over all frequencies is C(0)."""
    amplitude = 0.1
    spectra = compute_spectra(fake_polarizability([1000.0], []), DT_FS, temperature_K=None,
                              window="hann")
    frequency_per_fs = spectra.frequency_cm1 / INVERSE_FS_TO_CM1
    step = frequency_per_fs[1] - frequency_per_fs[0]
    integral = (2 * spectra.raman_iso.sum() - spectra.raman_iso[0]) * step  # -f_max .. f_max
    assert integral == pytest.approx(amplitude**2 / 2, rel=1e-2)


def test_ir_comes_from_the_dipole_derivative():
    dipole = np.stack([0.2 * cosine(1712.0), 0.1 * cosine(3105.5, 1.0), 0 * cosine(1.0)], 1)
    alpha = fake_polarizability([1000.0], [])
    spectra = compute_spectra(alpha, DT_FS, dipole=dipole, temperature_K=None)
    peaks = find_peaks(spectra.frequency_cm1, spectra.ir)
    np.testing.assert_allclose(peaks, [1712.0, 3105.5], atol=spectra.resolution_cm1 / 2)
    # The derivative weights a line by w^2: the amplitude ratio 2 becomes
    # (0.2 * 1712)^2 / (0.1 * 3105.5)^2 in peak height.
    heights = [spectra.ir[np.argmin(abs(spectra.frequency_cm1 - p))] for p in peaks]
    expected = (0.2 * 1712.0) ** 2 / (0.1 * 3105.5) ** 2
    assert heights[0] / heights[1] == pytest.approx(expected, rel=0.05)
    assert compute_spectra(alpha, DT_FS).ir is None


def test_quantum_correction_obeys_detailed_balance():
    temperature = 300.0
    nu = np.array([10.0, 500.0, 1500.0, 3000.0])
    ratio = quantum_correction(nu, temperature) / quantum_correction(-nu, temperature)
    x = HBAR_EV_S * 2 * np.pi * SPEED_OF_LIGHT_CM_PER_S * nu / (BOLTZMANN_EV_PER_K * temperature)
    np.testing.assert_allclose(ratio, np.exp(x), rtol=1e-10)
    assert quantum_correction(np.array([0.0]), temperature)[0] == 1.0
    # High frequency: Q -> hbar w / kT (about 14.4 at 3000 cm^-1 and 300 K).
    assert quantum_correction(np.array([3000.0]), temperature)[0] == pytest.approx(x[-1],
                                                                                   rel=1e-5)


def test_the_correction_reweights_high_frequencies():
    alpha = fake_polarizability([500.0, 3000.0], [])
    classical = compute_spectra(alpha, DT_FS, temperature_K=None)
    corrected = compute_spectra(alpha, DT_FS, temperature_K=300.0)
    nu = classical.frequency_cm1
    ratio = corrected.raman_iso / np.where(classical.raman_iso == 0, 1, classical.raman_iso)
    for line in (500.0, 3000.0):
        k = np.argmin(abs(nu - line))
        assert ratio[k] == pytest.approx(quantum_correction(nu[k:k + 1], 300.0)[0], rel=1e-9)


def test_uneven_or_too_short_series_are_errors():
    with pytest.raises(InputError, match="not evenly spaced"):
        sampling_interval(np.array([0.0, 1.0, 2.0, 3.5]))
    with pytest.raises(InputError, match="must increase"):
        sampling_interval(np.array([1.0, 1.0]))
    with pytest.raises(InputError, match="too few"):
        compute_spectra(np.zeros((4, 3, 3)), 1.0)


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3, 3) uniformly distributed rotations (QR of Gaussian matrices, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return q * np.sign(np.linalg.det(q))[:, None, None]


def orientational_average(alpha: np.ndarray, incident: str, analyser: str) -> float:
    """Scattered intensity of a randomly oriented tensor, by brute force over orientations.

    Light travels along y (natural light: polarised along z or x, averaged; linear: along
    z) and is observed along x, at 90 degrees; the analyser passes z ("parallel", out of
    the scattering plane xy), y ("perpendicular") or both ("total").
    """
    rotations = random_rotations(200_000)
    rotated = rotations @ alpha @ rotations.transpose(0, 2, 1)  # (n, 3, 3)
    polarisations = {"linear": [2], "natural": [2, 0]}[incident]
    analysers = {"parallel": [2], "perpendicular": [1], "total": [2, 1]}[analyser]
    return float(np.mean([np.mean(rotated[:, out, into] ** 2)
                          for into in polarisations for out in analysers]) * len(analysers))


@pytest.mark.parametrize("incident", ["linear", "natural"])
@pytest.mark.parametrize("analyser", ["parallel", "perpendicular", "total"])
def test_raman_geometry_factors_equal_the_orientational_average(incident, analyser):
    rng = np.random.default_rng(1)
    tensor = rng.normal(size=(3, 3))
    alpha = tensor + tensor.T + 2 * np.eye(3)
    a = np.trace(alpha) / 3
    beta = alpha - a * np.eye(3)
    gamma2 = 1.5 * np.sum(beta * beta)
    expected = orientational_average(alpha, incident, analyser)
    if incident == "natural":  # half the irradiance in each polarisation: Long writes
        expected *= 2  # (45 a^2 + 13 g^2) / 90; spectra are in arbitrary units anyway
    predicted = RamanGeometry(incident, analyser).intensity(a**2, gamma2)
    assert predicted == pytest.approx(expected, rel=1e-2)


@pytest.mark.parametrize("incident, ratio", [("linear", 3 / 4), ("natural", 6 / 7)])
def test_a_purely_anisotropic_line_has_the_depolarisation_ratio_of_its_geometry(incident,
                                                                                  ratio):
    alpha = fake_polarizability([], [1456.2])
    spectra = {analyser: compute_spectra(alpha, DT_FS, temperature_K=None,
                                         geometry=RamanGeometry(incident, analyser))
               for analyser in ("parallel", "perpendicular")}
    peak = int(np.argmax(spectra["parallel"].raman_total))
    assert spectra["perpendicular"].raman_total[peak] / spectra["parallel"].raman_total[peak] \
        == pytest.approx(ratio, rel=1e-9)
    assert RamanGeometry(incident).depolarisation_ratio(0.0, 1.0) == pytest.approx(ratio)


def test_unknown_raman_geometry_is_refused():
    with pytest.raises(InputError, match="incident"):
        RamanGeometry("circular")
    with pytest.raises(InputError, match="analyser"):
        RamanGeometry("linear", "diagonal")


def test_the_former_md_paths_still_offer_the_spectra_functions():
    from tridft.md.harmonic import harmonic_frequencies, model_hessian
    from tridft.md.spectra import RamanGeometry, compute_spectra
    from tridft.md.vibrations import vibrational_analysis
    from tridft.spectra import correlation, harmonic, vibrations

    assert harmonic_frequencies is harmonic.harmonic_frequencies
    assert model_hessian is harmonic.model_hessian
    assert RamanGeometry is correlation.RamanGeometry
    assert compute_spectra is correlation.compute_spectra
    assert vibrational_analysis is vibrations.vibrational_analysis
