"""Reference harmonic frequencies of ethanol at the bundled dataset's level of theory.

Writes tests/fixtures/ethanol_pbe_def2svp_harmonic.json: the optimised geometry,
the Cartesian Hessian (eV/Angstrom^2), the harmonic frequencies (cm^-1) from
PySCF's own harmonic analysis, the settings, the PySCF version and wall times.

Level of theory: restricted Kohn-Sham PBE/def2-SVP, density fitting (PySCF's
default auxiliary basis), grid level 2, conv_tol 1e-10 -- the settings that
labelled src/tridft/datasets/ethanol_pbe_def2svp_800.extxyz.

Steps:
1. start from frame 0 of the bundled dataset (rMD17 ethanol frame 0, a thermal geometry);
2. optimise it with PySCF's geomeTRIC driver (``pip install geometric``; a
   fixture-generation dependency only) to tight gradient convergence;
3. analytic density-fitted RKS Hessian (``mf.Hessian()`` of the density-fitted SCF);
4. ``pyscf.hessian.thermo.harmonic_analysis`` for the frequencies.

Run once, single-threaded (a few minutes)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ethanol_dft_hessian.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from tridft.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "tests" / "fixtures" / "ethanol_pbe_def2svp_harmonic.json"
DATASET = ROOT / "src" / "tridft" / "datasets" / "ethanol_pbe_def2svp_800.extxyz"

HARTREE_EV = 27.211386245988
BOHR_ANGSTROM = 0.529177210903

SETTINGS = {
    "xc": "PBE",
    "basis": "def2-SVP",
    "density_fit": True,
    "grid_level": 2,
    "conv_tol": 1e-10,
    "geometry_optimizer": "geomeTRIC via pyscf.geomopt.geometric_solver",
    "convergence": {"convergence_energy": 1e-7, "convergence_grms": 1e-5,
                    "convergence_gmax": 3e-5, "convergence_drms": 4e-5,
                    "convergence_dmax": 1e-4},
    "hessian": "analytic, density-fitted RKS (mf.Hessian())",
    "start": "frame 0 of ethanol_pbe_def2svp_800.extxyz (rMD17 ethanol frame 0)",
}


def make_scf(mol):
    from pyscf import dft

    mf = dft.RKS(mol, xc=SETTINGS["xc"]).density_fit()
    mf.grids.level = SETTINGS["grid_level"]
    mf.conv_tol = SETTINGS["conv_tol"]
    mf.verbose = 0
    return mf


def main() -> int:
    import ase.io
    import pyscf
    from pyscf import gto, lib
    from pyscf.geomopt.geometric_solver import optimize
    from pyscf.hessian import thermo

    lib.num_threads(1)
    start = ase.io.read(DATASET, index=0)
    mol = gto.M(atom=[(int(z), tuple(r)) for z, r in zip(start.numbers, start.positions)],
                basis=SETTINGS["basis"], unit="Angstrom", verbose=0)

    t0 = time.perf_counter()
    mf = make_scf(mol)
    optimised = optimize(mf, maxsteps=100, **SETTINGS["convergence"])
    t_opt = time.perf_counter() - t0
    print(f"geometry optimised in {t_opt:.0f} s", flush=True)

    t1 = time.perf_counter()
    mf = make_scf(optimised)
    energy = mf.kernel()
    gradient = mf.nuc_grad_method().kernel()  # Hartree/bohr, (n, 3)
    hessian_au = mf.Hessian().kernel()  # Hartree/bohr^2, (n, n, 3, 3)
    t_hess = time.perf_counter() - t1
    print(f"Hessian in {t_hess:.0f} s", flush=True)

    analysis = thermo.harmonic_analysis(optimised, hessian_au)
    frequencies = np.asarray(analysis["freq_wavenumber"])  # cm^-1; imaginary as complex
    n = optimised.natm
    hessian = hessian_au.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) \
        * HARTREE_EV / BOHR_ANGSTROM**2  # eV/Angstrom^2, (3n, 3n), index 3*atom + xyz

    payload = {
        "description": "Harmonic frequencies of ethanol, PBE/def2-SVP (RI, grid 2), PySCF",
        "settings": SETTINGS,
        "pyscf_version": pyscf.__version__,
        "numbers": [int(z) for z in optimised.atom_charges()],
        "positions_angstrom": optimised.atom_coords(unit="Angstrom").tolist(),
        "masses_amu": optimised.atom_mass_list(isotope_avg=True).tolist(),
        "energy_ev": float(energy) * HARTREE_EV,
        "max_gradient_ev_per_angstrom": float(np.abs(gradient).max()) * HARTREE_EV / BOHR_ANGSTROM,
        "hessian_ev_per_angstrom2": hessian.tolist(),
        "frequencies_cm1": [float(np.real(f)) if np.isreal(f) else -float(np.abs(f))
                            for f in frequencies],
        "frequencies_note": "pyscf.hessian.thermo.harmonic_analysis with masses_amu "
                            "(isotope averages); translations and rotations projected out; "
                            "imaginary frequencies stored as negative",
        "wall_time_s": {"geometry_optimisation": round(t_opt, 1), "hessian": round(t_hess, 1)},
        "threads": 1,
    }
    write_json_atomic(OUTPUT, payload)
    print("frequencies (cm^-1):", np.round(payload["frequencies_cm1"], 1).tolist())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
