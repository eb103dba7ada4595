"""Raman and IR spectra from time series of the polarizability and the dipole.

Raman (Stokes, 90 degree scattering, orientationally averaged)::

    a(t)    = tr alpha(t) / 3                        isotropic part (Angstrom^3)
    beta(t) = alpha(t) - a(t) I                      anisotropic (traceless) part
    I_iso(w)   = FT < da(0) da(t) >                  da = a - <a>
    I_aniso(w) = FT 3/2 < dbeta(0) : dbeta(t) >      the gamma^2 invariant's correlation
    I(w)       = (c_a 45 I_iso + c_g I_aniso) / 45   the scattering geometry picks c_a, c_g

The geometry (``RamanGeometry``): the incident light is linearly polarised (a laser)
or natural, and the scattered light is analysed parallel (polarised perpendicular to
the scattering plane, like a vertically polarised laser), perpendicular (in the
plane), or not at all (total). Long, The Raman Effect (2002), table 5.2::

    incident   parallel           perpendicular   total              depolarisation
    linear     45 a^2 + 4 g^2     3 g^2           45 a^2 + 7 g^2     3/4 for a = 0
    natural    45 a^2 + 7 g^2     6 g^2           45 a^2 + 13 g^2    6/7 for a = 0

The default, linear and total, is what quantum-chemistry codes call the Raman activity.

each multiplied by the harmonic quantum correction factor

    Q(w) = beta_T hbar w / (1 - exp(-beta_T hbar w)),  beta_T = 1 / (k_B T)

which maps a classical correlation spectrum onto the Stokes (detailed-balance)
quantum one for harmonic motion (Ramirez et al., J. Chem. Phys. 121, 3973 (2004)).
No laser-frequency factor (w_L - w)^4 is applied.

IR absorption: FT < dmu/dt(0) . dmu/dt(t) >, computed as w^2 FT < mu(0) . mu(t) >. With the
harmonic correction, alpha(w) n(w) ~ w (1 - exp(-beta_T hbar w)) Q(w) FT_classical
= beta_T hbar w^2 FT_classical, so the dipole-derivative spectrum already *is* the
quantum-corrected line shape: no further factor.

FT is a windowed cosine transform of the time-averaged (unbiased) correlation
function, truncated at ``max_lag_fs`` and multiplied by the right half of a window
(Hann by default) so that it falls smoothly to zero; the resolution is about
1 / max_lag, i.e. 33356 cm^-1 / max_lag_fs. Intensities are in arbitrary units
(the raw numbers are Angstrom^6 fs for Raman, (e Angstrom / fs)^2 fs for IR).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from tridft.errors import InputError
from tridft.extras import require_matplotlib
from tridft.files import atomic_output
from tridft.units import BOLTZMANN_EV_PER_K, HBAR_EV_S, INVERSE_FS_TO_CM1, SPEED_OF_LIGHT_CM_PER_S

logger = logging.getLogger(__name__)

WINDOWS = ("hann", "blackman", "gaussian", "none")
INCIDENT = ("linear", "natural")
ANALYSER = ("total", "parallel", "perpendicular")
# (incident, analyser) -> (weight of 45 a^2, weight of gamma^2) at 90 degrees.
_GEOMETRY_FACTORS = {
    ("linear", "parallel"): (1.0, 4.0), ("linear", "perpendicular"): (0.0, 3.0),
    ("linear", "total"): (1.0, 7.0),
    ("natural", "parallel"): (1.0, 7.0), ("natural", "perpendicular"): (0.0, 6.0),
    ("natural", "total"): (1.0, 13.0),
}
NORMALISE_ABOVE_CM1 = 100.0  # plots are scaled to their largest value above this


@dataclass(frozen=True)
class RamanGeometry:
    """90 degree scattering: ``incident`` light "linear" or "natural"; the scattered light
    analysed "parallel", "perpendicular" or "total" (see the module docstring).

    >>> natural = RamanGeometry("natural", "total")
    >>> round(float(natural.intensity(isotropic=0.0, anisotropic=1.0) * 45), 9)
    13.0
    >>> float(RamanGeometry().depolarisation_ratio(isotropic=0.0, anisotropic=1.0))
    0.75
    """

    incident: str = "linear"
    analyser: str = "total"

    def __post_init__(self):
        if self.incident not in INCIDENT:
            raise InputError(f"unknown incident light '{self.incident}' "
                             f"(choose from {', '.join(INCIDENT)})")
        if self.analyser not in ANALYSER:
            raise InputError(f"unknown analyser '{self.analyser}' "
                             f"(choose from {', '.join(ANALYSER)})")

    @property
    def anisotropic_weight(self) -> float:
        """Weight of the gamma^2 spectrum relative to the a^2 spectrum, over 45."""
        return _GEOMETRY_FACTORS[(self.incident, self.analyser)][1] / 45.0

    def intensity(self, isotropic, anisotropic):
        """(c_a 45 a^2 + c_g gamma^2) / 45 from the a^2 and gamma^2 spectra (or activities)."""
        a_weight, g_weight = _GEOMETRY_FACTORS[(self.incident, self.analyser)]
        return a_weight * np.asarray(isotropic) + g_weight / 45.0 * np.asarray(anisotropic)

    def depolarisation_ratio(self, isotropic, anisotropic):
        """I_perpendicular / I_parallel for this incident light."""
        parallel = RamanGeometry(self.incident, "parallel").intensity(isotropic, anisotropic)
        perpendicular = RamanGeometry(self.incident, "perpendicular").intensity(isotropic,
                                                                                anisotropic)
        return perpendicular / parallel

    def label(self) -> str:
        a_weight, g_weight = _GEOMETRY_FACTORS[(self.incident, self.analyser)]
        formula = (f"45 a$^2$ + {g_weight:.0f} $\\gamma^2$" if a_weight
                   else f"{g_weight:.0f} $\\gamma^2$")
        return f"{self.incident} light, {self.analyser}: {formula}"


@dataclass
class Spectra:
    """Spectra on one frequency grid. All arrays (F,); ``ir`` is None without dipoles.

    frequency_cm1: cm^-1; raman_iso (a^2), raman_aniso (gamma^2), raman_total (in
    ``geometry``), ir: arbitrary units.
    resolution_cm1: about 1 / (correlation length), the width of a single line.
    """

    frequency_cm1: np.ndarray
    raman_iso: np.ndarray
    raman_aniso: np.ndarray
    raman_total: np.ndarray
    ir: np.ndarray | None
    resolution_cm1: float
    temperature_K: float | None  # of the quantum correction; None: classical
    geometry: RamanGeometry = RamanGeometry()


# --------------------------------------------------------------------- building blocks


def autocorrelation(series: np.ndarray, max_lag: int) -> np.ndarray:
    """(max_lag,) C(k) = sum over components of mean_t x(t) x(t + k); unbiased estimator.

    series: (T, ...) one row per time step. Computed with a zero-padded FFT.
    """
    x = np.asarray(series, dtype=np.float64).reshape(len(series), -1)
    n = len(x)
    if not 0 < max_lag <= n:
        raise ValueError(f"max_lag must be in 1..{n}, got {max_lag}")
    size = 1 << (2 * n - 1).bit_length()
    transform = np.fft.rfft(x, n=size, axis=0)
    correlation = np.fft.irfft(np.abs(transform) ** 2, n=size, axis=0)[:max_lag].sum(axis=1)
    return correlation / (n - np.arange(max_lag))


def one_sided_window(name: str, length: int) -> np.ndarray:
    """(length,) w(0) = 1 falling to (nearly) 0 at the last lag."""
    k = np.arange(length)
    if name == "hann":
        return np.cos(0.5 * np.pi * k / length) ** 2
    if name == "blackman":
        x = np.pi * (k / length + 1)  # the right half of a Blackman window of 2 * length
        return 0.42 - 0.5 * np.cos(x) + 0.08 * np.cos(2 * x)
    if name == "gaussian":
        return np.exp(-0.5 * (3.0 * k / length) ** 2)  # 3 sigma at the end
    if name == "none":
        return np.ones(length)
    raise InputError(f"unknown window '{name}' (choose from {', '.join(WINDOWS)})")


def cosine_transform(correlation: np.ndarray, dt_fs: float,
                     oversample: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(frequency (F,) cm^-1, dt [C(0) + 2 sum_k C(k) cos(2 pi f k dt)] (F,)).

    The spectrum of an even correlation function known at lags 0..L-1; zero padding
    to ``oversample`` times L only interpolates the frequency grid.
    """
    size = 1 << (oversample * 2 * len(correlation) - 1).bit_length()
    transform = np.fft.rfft(correlation, n=size).real
    spectrum = dt_fs * (2.0 * transform - correlation[0])
    frequency = np.fft.rfftfreq(size, d=dt_fs) * INVERSE_FS_TO_CM1
    return frequency, spectrum


def quantum_correction(frequency_cm1: np.ndarray, temperature_K: float) -> np.ndarray:
    """Q = x / (1 - exp(-x)), x = hbar w / (k_B T); 1 at w = 0, ~x at high frequency.

    Defined for negative (anti-Stokes) frequencies too: Q(w) / Q(-w) = exp(x).
    """
    angular = 2 * np.pi * SPEED_OF_LIGHT_CM_PER_S * np.asarray(frequency_cm1)  # rad/s
    x = HBAR_EV_S * angular / (BOLTZMANN_EV_PER_K * temperature_K)
    tiny = np.abs(x) < 1e-8
    safe = np.where(tiny, 1.0, x)
    return np.where(tiny, 1.0, safe / -np.expm1(-safe))


# ------------------------------------------------------------------------- spectra


def compute_spectra(polarizability: np.ndarray, dt_fs: float, dipole: np.ndarray | None = None,
                    temperature_K: float | None = 300.0, max_lag_fs: float | None = None,
                    window: str = "hann", geometry: RamanGeometry = RamanGeometry()) -> Spectra:
    """Raman (and IR, with dipoles) spectra of evenly spaced samples ``dt_fs`` apart.

    polarizability: (T, 3, 3) Angstrom^3; dipole: (T, 3) e*Angstrom or None.
    temperature_K:  of the quantum correction of the Raman spectra; None or 0: classical.
    max_lag_fs:     length of the correlation functions (default: half the series).
    geometry:       of the Raman experiment, for ``raman_total``.
    """
    alpha = np.asarray(polarizability, dtype=np.float64).reshape(-1, 3, 3)
    n = len(alpha)
    if n < 8:
        raise InputError(f"{n} frames are too few for a spectrum (need at least 8)")
    if dt_fs <= 0:
        raise InputError(f"the time step must be positive, got {dt_fs} fs")
    max_lag = n // 2 if max_lag_fs is None else int(round(max_lag_fs / dt_fs))
    max_lag = max(2, min(max_lag, n))
    taper = one_sided_window(window, max_lag)

    def spectrum(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fluctuation = series - series.mean(axis=0)
        return cosine_transform(autocorrelation(fluctuation, max_lag) * taper, dt_fs)

    isotropic = np.trace(alpha, axis1=1, axis2=2) / 3.0  # (T,)
    anisotropic = alpha - isotropic[:, None, None] * np.eye(3)  # (T, 3, 3)
    frequency, raman_iso = spectrum(isotropic)
    _, raman_aniso = spectrum(anisotropic)
    raman_aniso = 1.5 * raman_aniso  # <beta:beta> -> gamma^2
    if temperature_K:
        correction = quantum_correction(frequency, temperature_K)
        raman_iso, raman_aniso = raman_iso * correction, raman_aniso * correction
    ir = None
    if dipole is not None:
        # FT<dmu/dt(0) . dmu/dt(t)> = w^2 FT<mu(0) . mu(t)>; multiplying by w^2 is exact,
        # where a finite-difference derivative would damp a 3000 cm^-1 line by 10 % at 1 fs.
        _, dipole_spectrum = spectrum(np.asarray(dipole, dtype=np.float64).reshape(n, 3))
        angular_per_fs = 2 * np.pi * frequency / INVERSE_FS_TO_CM1
        ir = angular_per_fs**2 * dipole_spectrum
    return Spectra(frequency_cm1=frequency, raman_iso=raman_iso, raman_aniso=raman_aniso,
                   raman_total=geometry.intensity(raman_iso, raman_aniso), ir=ir,
                   resolution_cm1=INVERSE_FS_TO_CM1 / (max_lag * dt_fs),
                   temperature_K=temperature_K or None, geometry=geometry)


def spectra_from_frames(frames, temperature_K: float | None = None,
                        max_lag_fs: float | None = None, window: str = "hann",
                        path: str = "trajectory",
                        geometry: RamanGeometry = RamanGeometry()) -> Spectra:
    """Spectra of an MD trajectory (list of ase.Atoms from read_trajectory).

    The sampling interval comes from the frames' ``time_fs``; temperature_K None
    means the trajectory's mean ``temperature_K`` (300 K if it has none); 0: classical.
    """
    from tridft.md.trajectory import has_key, series

    if len(frames) < 8:
        raise InputError(f"{len(frames)} frames are too few for a spectrum (need at least 8)",
                         path=path)
    time_fs = series(frames, "time_fs", path=path)
    dt_fs = sampling_interval(time_fs, path)
    alpha = series(frames, "polarizability", (3, 3), path=path)
    dipole = series(frames, "dipole", (3,), path=path) if has_key(frames, "dipole") else None
    if temperature_K is None:
        temperature_K = (float(series(frames, "temperature_K", path=path).mean())
                         if has_key(frames, "temperature_K") else 300.0)
    return compute_spectra(alpha, dt_fs, dipole, temperature_K, max_lag_fs, window, geometry)


def sampling_interval(time_fs: np.ndarray, path: str = "trajectory") -> float:
    """The constant spacing of ``time_fs``; InputError when frames are not evenly spaced."""
    steps = np.diff(time_fs)
    if len(steps) == 0 or steps[0] <= 0:
        raise InputError("time_fs must increase from frame to frame", path=path, field="time_fs")
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        worst = int(np.argmax(np.abs(steps - steps[0]))) + 1
        raise InputError(f"frames are not evenly spaced in time (step {steps[0]} fs, "
                         f"but {steps[worst - 1]} fs before frame {worst})", path=path,
                         field="time_fs")
    return float(steps[0])


# ----------------------------------------------------------------- peaks and output


def find_peaks(frequency_cm1: np.ndarray, intensity: np.ndarray, top: int = 10,
               smooth_cm1: float = 5.0, min_cm1: float = 100.0,
               max_cm1: float = 4000.0, min_prominence: float = 0.02) -> list[float]:
    """Positions (cm^-1, ascending) of the ``top`` highest peaks of the smoothed spectrum.

    The spectrum is smoothed by a Gaussian of ``smooth_cm1`` (standard deviation) and
    searched within [min_cm1, max_cm1]; a peak must stand out by ``min_prominence``
    of the largest value there.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks as scipy_find_peaks

    frequency_cm1 = np.asarray(frequency_cm1, dtype=np.float64)
    step = float(frequency_cm1[1] - frequency_cm1[0])
    smoothed = gaussian_filter1d(np.asarray(intensity, dtype=np.float64),
                                 max(smooth_cm1 / step, 1e-3))
    inside = np.flatnonzero((frequency_cm1 >= min_cm1) & (frequency_cm1 <= max_cm1))
    if len(inside) < 3:
        return []
    region = smoothed[inside]
    scale = float(region.max())
    if scale <= 0:
        return []
    indices, _ = scipy_find_peaks(region, prominence=min_prominence * scale)
    strongest = sorted(indices, key=lambda i: region[i], reverse=True)[:top]
    return sorted(float(frequency_cm1[inside[i]]) for i in strongest)


def write_csv(spectra: Spectra, path: str | os.PathLike, max_cm1: float | None = None) -> None:
    """frequency_cm1, raman_iso, raman_aniso, raman_total, ir (empty without dipoles)."""
    keep = slice(None) if max_cm1 is None else spectra.frequency_cm1 <= max_cm1
    columns = [spectra.frequency_cm1[keep], spectra.raman_iso[keep], spectra.raman_aniso[keep],
               spectra.raman_total[keep]]
    ir = spectra.ir[keep] if spectra.ir is not None else [None] * len(columns[0])

    def emit(stream) -> None:
        writer = csv.writer(stream)
        writer.writerow(["frequency_cm1", "raman_iso", "raman_aniso", "raman_total", "ir"])
        for *row, ir_value in zip(*columns, ir):
            writer.writerow([f"{value:.6g}" for value in row]
                            + ["" if ir_value is None else f"{ir_value:.6g}"])

    with atomic_output(path) as temporary, temporary.open("w", newline="") as stream:
        emit(stream)


def plot_spectra(spectra: Spectra, path: str | os.PathLike, max_cm1: float = 4000.0,
                 peaks: list[float] | None = None, title: str = "") -> None:
    """A PNG: Raman (total, isotropic, anisotropic) above IR when present.

    Each panel is scaled to its largest value above 100 cm^-1 (the rotational wing
    below is clipped).
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keep = spectra.frequency_cm1 <= max_cm1
    nu = spectra.frequency_cm1[keep]
    # Normalise to the vibrational region: below ~100 cm^-1 the rotational (Rayleigh)
    # wing of a tumbling molecule would dwarf every vibrational line.
    vibrational = nu >= NORMALISE_ABOVE_CM1
    panels = 2 if spectra.ir is not None else 1
    figure, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels), sharex=True,
                                squeeze=False)
    raman = axes[0, 0]
    scale = _positive_max(spectra.raman_total[keep][vibrational])
    raman.plot(nu, spectra.raman_total[keep] / scale, color="black", lw=1.2,
               label=spectra.geometry.label())
    raman.plot(nu, spectra.raman_iso[keep] / scale, color="tab:blue", lw=0.8, label="isotropic")
    weight = spectra.geometry.anisotropic_weight
    raman.plot(nu, weight * spectra.raman_aniso[keep] / scale, color="tab:orange",
               lw=0.8, label=f"anisotropic (x {45 * weight:.0f}/45)")
    for peak in peaks or []:
        raman.axvline(peak, color="grey", lw=0.5, ls=":")
    correction = (f"quantum-corrected at {spectra.temperature_K:.0f} K"
                  if spectra.temperature_K else "classical")
    raman.set_ylabel(f"Raman intensity\n(normalised, {correction})")
    raman.set_ylim(-0.05, 1.1)
    raman.legend(frameon=False, fontsize=8)
    raman.set_title(title or f"resolution ~{spectra.resolution_cm1:.0f} cm$^{{-1}}$")
    if spectra.ir is not None:
        ir = axes[1, 0]
        ir.plot(nu, spectra.ir[keep] / _positive_max(spectra.ir[keep][vibrational]),
                color="tab:red", lw=1.0)
        ir.set_ylim(-0.05, 1.1)
        ir.set_ylabel("IR absorption\n(normalised)")
    axes[-1, 0].set_xlabel("wavenumber (cm$^{-1}$)")
    axes[-1, 0].set_xlim(0, max_cm1)
    figure.tight_layout()
    try:
        with atomic_output(path) as temporary:
            figure.savefig(temporary, format="png", dpi=120)
    finally:
        plt.close(figure)


def _positive_max(values: np.ndarray) -> float:
    largest = float(np.max(values)) if len(values) else 0.0
    return largest if largest > 0 and math.isfinite(largest) else 1.0
