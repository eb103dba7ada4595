"""Reference harmonic Raman activities and IR intensities of ethanol, PBE/def2-SVP.

Writes tests/fixtures/ethanol_pbe_def2svp_raman.json from
tests/fixtures/ethanol_pbe_def2svp_harmonic.json (geometry, masses, Hessian):

1. normal modes: the fixture Hessian diagonalised with the fixture masses by
   ``tridft.spectra.harmonic.harmonic_frequencies`` (mass-weighted, translations and
   rotations projected out). Its unit-norm Cartesian modes u_k are rescaled to
   d_k = u_k / |sqrt(m) u_k|, the Cartesian displacement (Angstrom) per unit
   normal coordinate Q_k (Angstrom * sqrt(amu)), i.e. d_k = e_k / sqrt(m) with e_k
   the orthonormal eigenvector of the mass-weighted Hessian;
2. for every mode, the static polarizability (analytic CPKS) and the dipole at
   positions + Q d_k for Q = +h and -h, with the settings that labelled the bundled
   dataset (``tridft.label.pyscf_backend.LabelSettings()``: RKS PBE/def2-SVP, density
   fitting with def2-universal-jkfit, grid level 2, SCF conv_tol 1e-10, CPKS tol 1e-9),
   plus a tighter SCF orbital-gradient tolerance (conv_tol_grad 1e-7 instead of PySCF's
   sqrt(conv_tol) = 1e-5) so that finite differences are not SCF noise; each SCF
   starts from the converged equilibrium density;
3. central differences dalpha/dQ_k (Angstrom^3 / (Angstrom sqrt(amu))) and dmu/dQ_k
   (e Angstrom / (Angstrom sqrt(amu))); per mode the isotropic invariant a' = tr/3,
   the anisotropy gamma'^2 = 3/2 (traceless part : traceless part), the Raman activity
   S = 45 a'^2 + 7 gamma'^2 (Angstrom^4/amu), the depolarisation ratio for linearly
   polarised light 3 gamma'^2 / (45 a'^2 + 4 gamma'^2), and the IR intensity
   |dmu/dQ|^2 in km/mol;
4. checks: the frequencies agree with the fixture's (PySCF's own harmonic analysis)
   to < 1 cm^-1; the step is repeated with h/2 on the strongest Raman mode (linearity);
   the same mode is repeated with the Hessian's auxiliary basis (def2-universal-jfit,
   what PySCF chose for the harmonic fixture) to show that choice does not matter.

Run once, single-threaded (47 polarizability calculations; 21 min on a shared core)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ethanol_dft_raman.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from tridft.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
HARMONIC = ROOT / "tests" / "fixtures" / "ethanol_pbe_def2svp_harmonic.json"
OUTPUT = ROOT / "tests" / "fixtures" / "ethanol_pbe_def2svp_raman.json"

STEP = 0.01  # Angstrom * sqrt(amu): at most 0.01 Angstrom for a hydrogen
FREQUENCY_TOLERANCE_CM1 = 1.0
# The auxiliary basis PySCF picked for the harmonic fixture (dft.RKS(mol, xc="PBE")
# .density_fit() in benchmarks/ethanol_dft_hessian.py); the labels pin the JK set.
HESSIAN_AUXBASIS = "def2-universal-jfit"
# SCF orbital-gradient tolerance of every displaced calculation. The labels' conv_tol
# (1e-10 Hartree) leaves PySCF's conv_tol_grad at sqrt(1e-10) = 1e-5, and then the
# dipole of one geometry depends on the initial guess by ~5e-6 e Angstrom: ~5e-4 in
# dmu/dQ at h/2 = 0.005, a few per cent of a weak IR band. At 1e-7 the guesses agree
# to 1e-8 e Angstrom. A convergence setting only; the level of theory is the labels'.
SCF_CONV_TOL_GRAD = 1e-7

# CODATA 2018 (exact in the SI since 2019, except the electric constant).
AVOGADRO = 6.02214076e23  # 1/mol
SPEED_OF_LIGHT = 299792458.0  # m/s
ELEMENTARY_CHARGE = 1.602176634e-19  # C
ATOMIC_MASS_UNIT = 1.66053906660e-27  # kg
ELECTRIC_CONSTANT = 8.8541878128e-12  # F/m


def km_mol_per_e2_per_amu() -> float:
    """IR intensity (km/mol) of one mode with |dmu/dQ|^2 = 1 (e Angstrom)^2/(Angstrom^2 amu).

    The integrated absorption coefficient of a harmonic fundamental (double-harmonic
    approximation) is, in SI units,

        A = N_A pi / (3 c^2) * 1/(4 pi eps0) * |dmu/dQ|^2 = N_A / (12 eps0 c^2) |dmu/dQ|^2,

    with dmu/dQ in C m / (m kg^1/2) = C / kg^1/2, which gives A in m/mol. A dipole
    derivative of 1 e Angstrom / (Angstrom amu^1/2) is e / sqrt(amu) in SI (the
    Angstroms cancel), so the factor is N_A e^2 / (12 eps0 c^2 amu) m/mol, / 1000 for
    km/mol: 974.88 km/mol (equivalently 42.2561 km/mol per (D/Angstrom)^2/amu times
    (4.80320 D per e Angstrom)^2).
    """
    metres_per_mol = AVOGADRO * ELEMENTARY_CHARGE**2 / (
        12 * ELECTRIC_CONSTANT * SPEED_OF_LIGHT**2 * ATOMIC_MASS_UNIT)
    return metres_per_mol / 1000.0


IR_KM_MOL = km_mol_per_e2_per_amu()
assert abs(IR_KM_MOL - 974.88) < 0.01, IR_KM_MOL


def normal_modes(reference: dict):
    """Frequencies (cm^-1, (M,)) and d_k (M, n, 3): Angstrom per Angstrom sqrt(amu)."""
    from tridft.spectra.harmonic import harmonic_frequencies

    masses = np.asarray(reference["masses_amu"])
    positions = np.asarray(reference["positions_angstrom"])
    result = harmonic_frequencies(np.asarray(reference["hessian_ev_per_angstrom2"]),
                                  masses, positions)
    modes = result.modes  # (M, n, 3), unit Cartesian norm
    mass_weighted_norm = np.sqrt((masses[None, :, None] * modes**2).sum(axis=(1, 2)))
    displacements = modes / mass_weighted_norm[:, None, None]
    # sqrt(m) d_k are orthonormal: the eigenvectors e_k of the mass-weighted Hessian.
    e = (np.sqrt(masses)[None, :, None] * displacements).reshape(len(modes), -1)
    assert np.allclose(e @ e.T, np.eye(len(modes)), atol=1e-10)
    return result.frequencies_cm1, displacements


def raman_invariants(dalpha: np.ndarray) -> dict:
    """a'^2, gamma'^2, activity and depolarisation of one (3, 3) polarizability derivative."""
    a = np.trace(dalpha) / 3.0
    traceless = dalpha - a * np.eye(3)
    gamma2 = 1.5 * float(np.sum(traceless * traceless))
    a2 = float(a * a)
    denominator = 45 * a2 + 4 * gamma2
    return {"a2": a2, "gamma2": gamma2, "raman_activity": 45 * a2 + 7 * gamma2,
            "depolarisation_ratio": 3 * gamma2 / denominator if denominator > 0 else 0.0}


class Labeller:
    """Polarizability (Angstrom^3) and dipole (e Angstrom) of displaced ethanols."""

    def __init__(self, numbers, settings, dm0=None):
        self.numbers, self.settings, self.dm0 = numbers, settings, dm0
        self.times: list[float] = []
        self.retries = 0

    def __call__(self, positions):
        from tridft.label.pyscf_backend import (build_molecule, charge_centre_bohr, dipole_au,
                                                make_scf, polarizability_au, pyscf_threads,
                                                run_scf)
        from tridft.units import BOHR3_ANGSTROM3, BOHR_ANGSTROM

        start = time.perf_counter()
        mol = build_molecule(self.numbers, positions, self.settings.basis)
        with pyscf_threads(self.settings.threads):
            mf = make_scf(mol, self.settings)
            mf.conv_tol_grad = SCF_CONV_TOL_GRAD
            self.retries += run_scf(mf, self.dm0)
            origin = charge_centre_bohr(mol)
            alpha = polarizability_au(mf, origin, tol=self.settings.cpks_tol) * BOHR3_ANGSTROM3
            dipole = dipole_au(mf, origin) * BOHR_ANGSTROM
        if self.dm0 is None:
            self.dm0 = mf.make_rdm1()
        self.times.append(time.perf_counter() - start)
        return alpha, dipole

    def derivatives(self, positions, displacement, step):
        """Central differences (dalpha/dQ (3, 3), dmu/dQ (3,)) along one mode."""
        alpha_p, mu_p = self(positions + step * displacement)
        alpha_m, mu_m = self(positions - step * displacement)
        return (alpha_p - alpha_m) / (2 * step), (mu_p - mu_m) / (2 * step)


def mode_record(frequency, dalpha, dmu) -> dict:
    invariants = raman_invariants(dalpha)
    return {"frequency_cm1": float(frequency), "dalpha_dq": dalpha.tolist(),
            "dmu_dq": dmu.tolist(), **invariants,
            "ir_intensity_km_mol": float(dmu @ dmu) * IR_KM_MOL}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=float, default=STEP,
                        help="h, Angstrom sqrt(amu) (default %(default)s)")
    parser.add_argument("--modes", type=int, nargs="*",
                        help="only these mode indices (a trial run; default all)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    from tridft.label.pyscf_backend import LabelSettings, pyscf_version, warm_up

    warm_up()
    wall_start = time.perf_counter()
    reference = json.loads(HARMONIC.read_text())
    settings = LabelSettings(threads=1, properties=("polarizability", "dipole"))
    for key in ("xc", "basis", "density_fit", "grid_level", "conv_tol"):
        assert getattr(settings, key) == reference["settings"][key], key

    frequencies, displacements = normal_modes(reference)
    deviation = np.abs(frequencies - np.asarray(reference["frequencies_cm1"]))
    print(f"frequencies vs fixture: max |diff| {deviation.max():.4f} cm^-1", flush=True)
    assert deviation.max() < FREQUENCY_TOLERANCE_CM1, deviation

    numbers = reference["numbers"]
    positions = np.asarray(reference["positions_angstrom"])
    label = Labeller(numbers, settings)
    alpha0, mu0 = label(positions)  # also stores the equilibrium density as the guess
    print(f"equilibrium: alpha iso {np.trace(alpha0) / 3:.4f} A^3, |mu| "
          f"{np.linalg.norm(mu0):.4f} e A ({label.times[-1]:.1f} s)", flush=True)

    h = args.step
    indices = range(len(frequencies)) if args.modes is None else args.modes
    modes = []
    for k in indices:
        dalpha, dmu = label.derivatives(positions, displacements[k], h)
        modes.append({"index": k, **mode_record(frequencies[k], dalpha, dmu)})
        m = modes[-1]
        print(f"mode {k:2d} {frequencies[k]:7.1f} cm^-1  S {m['raman_activity']:8.3f} A^4/amu"
              f"  rho {m['depolarisation_ratio']:.3f}  IR {m['ir_intensity_km_mol']:8.3f} km/mol"
              f"  ({label.times[-2] + label.times[-1]:.0f} s)", flush=True)
    main_wall = time.perf_counter() - wall_start

    # Linearity (h vs h/2) and auxiliary basis (JK vs J fitting), on the strongest mode.
    strongest = max(modes, key=lambda m: m["raman_activity"])
    k = strongest["index"]
    checks = {}
    dalpha, dmu = label.derivatives(positions, displacements[k], h / 2)
    half = mode_record(frequencies[k], dalpha, dmu)
    jfit = Labeller(numbers, dataclasses.replace(settings, auxbasis=HESSIAN_AUXBASIS), label.dm0)
    dalpha_j, dmu_j = jfit.derivatives(positions, displacements[k], h)
    other_aux = mode_record(frequencies[k], dalpha_j, dmu_j)
    for name, record, what in (("half_step", half, f"step h/2 = {h / 2} instead of h"),
                               ("auxbasis_jfit", other_aux,
                                f"auxbasis {HESSIAN_AUXBASIS} (the harmonic fixture's) "
                                f"instead of {settings.auxbasis}")):
        dalpha_ref, dmu_ref = np.asarray(strongest["dalpha_dq"]), np.asarray(strongest["dmu_dq"])
        checks[name] = {
            "mode_index": k, "what": what,
            "raman_activity": record["raman_activity"],
            "ir_intensity_km_mol": record["ir_intensity_km_mol"],
            "depolarisation_ratio": record["depolarisation_ratio"],
            "max_abs_diff_dalpha_dq": float(np.abs(np.asarray(record["dalpha_dq"])
                                                   - dalpha_ref).max()),
            "max_abs_dalpha_dq": float(np.abs(dalpha_ref).max()),
            "max_abs_diff_dmu_dq": float(np.abs(np.asarray(record["dmu_dq"]) - dmu_ref).max()),
            "raman_activity_rel_diff": record["raman_activity"] / strongest["raman_activity"] - 1,
            "ir_intensity_rel_diff": (record["ir_intensity_km_mol"]
                                      / strongest["ir_intensity_km_mol"] - 1),
        }
        print(f"{name}: mode {k}: S {record['raman_activity']:.4f} vs "
              f"{strongest['raman_activity']:.4f}, IR {record['ir_intensity_km_mol']:.4f} vs "
              f"{strongest['ir_intensity_km_mol']:.4f}, max |d dalpha/dQ| "
              f"{checks[name]['max_abs_diff_dalpha_dq']:.2e}", flush=True)
    wall = time.perf_counter() - wall_start

    columns = ("a2", "gamma2", "raman_activity", "depolarisation_ratio", "ir_intensity_km_mol")
    payload = {
        "description": "Harmonic Raman activities, depolarisation ratios and IR intensities "
                       "of ethanol at its PBE/def2-SVP minimum (the geometry, masses and "
                       "Hessian of ethanol_pbe_def2svp_harmonic.json): central differences "
                       "of the analytic (CPKS) polarizability and of the dipole along each "
                       "normal coordinate, PySCF, made by benchmarks/ethanol_dft_raman.py",
        "source_fixture": HARMONIC.name,
        "settings": {**dataclasses.asdict(settings), "properties": list(settings.properties),
                     "conv_tol_grad": SCF_CONV_TOL_GRAD,
                     "initial_guess": "converged equilibrium density"},
        "pyscf_version": pyscf_version().split()[-1],
        "units": {"frequencies_cm1": "cm^-1",
                  "step": "Angstrom sqrt(amu) (normal coordinate Q)",
                  "displacements": "Angstrom per Angstrom sqrt(amu) (d_k = e_k / sqrt(m))",
                  "dalpha_dq": "Angstrom^3 / (Angstrom sqrt(amu)) = Angstrom^2 / sqrt(amu)",
                  "dmu_dq": "e Angstrom / (Angstrom sqrt(amu)) = e / sqrt(amu)",
                  "a2": "Angstrom^4/amu", "gamma2": "Angstrom^4/amu",
                  "raman_activity": "Angstrom^4/amu", "depolarisation_ratio": "1",
                  "ir_intensity_km_mol": "km/mol"},
        "definitions": {
            "a2": "(tr(dalpha/dQ) / 3)^2",
            "gamma2": "3/2 * B:B with B the traceless part of dalpha/dQ",
            "raman_activity": "45 a2 + 7 gamma2",
            "depolarisation_ratio": "3 gamma2 / (45 a2 + 4 gamma2) (linearly polarised "
                                    "light, 90 degree scattering)",
            "ir_intensity_km_mol": f"|dmu/dQ|^2 * {IR_KM_MOL:.4f} (N_A e^2 / (12 eps0 c^2 amu), "
                                   "CODATA 2018)",
        },
        "modes_note": "harmonic_frequencies (tridft.spectra.harmonic) of the fixture Hessian and "
                      "masses; mode signs are arbitrary, so dalpha_dq and dmu_dq are defined up "
                      "to the sign of each mode (the invariants are not)",
        "step": h,
        "max_frequency_diff_vs_fixture_cm1": float(deviation.max()),
        "equilibrium": {"polarizability_angstrom3": alpha0.tolist(),
                        "dipole_e_angstrom": mu0.tolist()},
        "frequencies_cm1": [m["frequency_cm1"] for m in modes],
        "mode_indices": [m["index"] for m in modes],
        "displacements": [displacements[m["index"]].tolist() for m in modes],
        "dalpha_dq": [m["dalpha_dq"] for m in modes],
        "dmu_dq": [m["dmu_dq"] for m in modes],
        **{name: [m[name] for m in modes] for name in columns},
        "checks": checks,
        "scf_retries": label.retries + jfit.retries,
        "wall_time_s": {"total": round(wall, 1), "main": round(main_wall, 1),
                        "per_polarizability_mean": round(float(np.mean(label.times)), 2),
                        "n_polarizabilities": len(label.times) + len(jfit.times)},
        "threads": 1,
    }
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
