"""What a trained model is worth for vibrations: harmonic frequencies, Raman activities,
MD speed and energy drift.

    .venv/bin/python benchmarks/md_ethanol.py runs/demo/model.pt --out docs/results/x.json

1. Harmonic frequencies. The DFT reference (tests/fixtures/ethanol_pbe_def2svp_harmonic.json,
   PBE/def2-SVP at the DFT minimum) against the model's (tridft.spectra.vibrations): the DFT
   geometry relaxed with the model's conservative forces (BFGS, fmax 1e-4 eV/Angstrom),
   the model Hessian by autograd (float64). Modes are matched by order (both lists
   sorted ascending); MAE and max error in cm^-1.
2. Raman activities (45 a'^2 + 7 g'^2, Angstrom^4/amu) of the model's polarizability along
   its own normal modes against PySCF's along the DFT modes
   (tests/fixtures/ethanol_pbe_def2svp_raman.json): Pearson r over the 21 modes.
3. MD speed: steps per second of NVE dynamics with direct forces, conservative forces and
   multiple time steps (tridft.md.integrators: valence springs fitted to the model, or the
   direct force head, between corrections to -dE/dR every k steps) (one torch thread,
   trajectory written every 2 steps, or every k with springs, as `tridft md` does by
   default), per wall-clock second and per CPU second (the speed on an otherwise idle core).
4. Energy conservation: NVE at 300 K, 0.5 fs, from the same initial velocities, in each
   mode: total-energy drift (eV/atom/ps, the slope of a linear fit; over the whole run and
   over its first 250 fs) and the standard deviation of the total energy.

Everything is one process, one thread; the JSON holds every number printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ase
import numpy as np
import torch

from tridft.errors import TriDFTError
from tridft.files import write_json_atomic
from tridft.md.calculator import TriDFTCalculator
from tridft.md.dynamics import MDSettings, energy_drift, run_md
from tridft.spectra.vibrations import vibrational_analysis
from tridft.md.trajectory import read_trajectory, series
from tridft.model.persistence import load_model

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "fixtures" / "ethanol_pbe_def2svp_harmonic.json"
RAMAN_REFERENCE = ROOT / "tests" / "fixtures" / "ethanol_pbe_def2svp_raman.json"
MTS_EVERY = (2, 3, 4)  # multiple-time-step corrections measured, direct head between them
SPRING_EVERY = (2, 3, 4)  # ... and valence springs between them
EARLY_FS = 250.0  # drift also over the first 0.25 ps: direct forces may run away later


def harmonic_comparison(model, reference: dict, raman_reference: dict | None = None) -> dict:
    masses = np.array(reference["masses_amu"])
    dft = np.array(reference["frequencies_cm1"])
    atoms = ase.Atoms(numbers=reference["numbers"], positions=reference["positions_angstrom"])
    atoms.set_masses(masses)
    analysis = vibrational_analysis(model, atoms, fmax=1e-4)
    displacement = np.linalg.norm(analysis.atoms.positions - atoms.positions, axis=1)
    ours = analysis.frequencies_cm1
    result = {
        "relaxation_converged": analysis.converged,
        "max_displacement_from_dft_minimum_angstrom": float(displacement.max()),
        "dft_cm1": dft.tolist(),
        "model_cm1": ours.tolist(),
        "mae_cm1": float(np.mean(np.abs(ours - dft))),
        "max_abs_error_cm1": float(np.max(np.abs(ours - dft))),
        "mae_below_2000_cm1": float(np.mean(np.abs(ours - dft)[dft < 2000])),
        "mae_above_2000_cm1": float(np.mean(np.abs(ours - dft)[dft >= 2000])),
    }
    if raman_reference is not None and analysis.raman_activity is not None:
        dft_raman = np.array(raman_reference["raman_activity"])
        model_raman = analysis.raman_activity
        result.update({
            "dft_raman_activity": dft_raman.tolist(),
            "model_raman_activity": model_raman.tolist(),
            "raman_pearson_r": float(np.corrcoef(dft_raman, model_raman)[0, 1]),
            "dft_depolarisation": raman_reference["depolarisation_ratio"],
            "model_depolarisation": analysis.depolarisation_ratio.tolist(),
        })
    return result


def nve_run(model, reference: dict, forces: str, steps: int, workdir: Path,
            every: int = 0) -> dict:
    """forces: "conservative", "direct" or "springs" (valence springs between corrections)."""
    atoms = ase.Atoms(numbers=reference["numbers"], positions=reference["positions_angstrom"])
    springs = forces == "springs"
    label = (f"mts springs k={every}" if springs else f"mts k={every}") if every else forces
    atoms.calc = TriDFTCalculator(model, forces="conservative" if springs else forces)
    settings = MDSettings(ensemble="nve", temperature_K=300.0, timestep_fs=0.5, steps=steps,
                          interval=every if springs else 2, seed=0, correction_every=every,
                          fast_forces="springs" if springs else "direct")
    path = workdir / f"nve_{forces}_{every}.extxyz"
    try:
        summary = run_md(atoms, settings, path)
    except TriDFTError as error:  # the blow-up guard stopped it: a result, not a crash
        return {"forces": label, "correction_every": every, "steps": steps,
                "blew_up": str(error)}
    frames = read_trajectory(path)
    total = series(frames, "total_energy")
    time_fs = series(frames, "time_fs")
    early = time_fs <= EARLY_FS
    return {
        "forces": label,
        "correction_every": every,
        "steps": steps,
        "duration_ps": steps * settings.timestep_fs / 1000,
        "steps_per_s": summary.steps_per_s,
        "steps_per_cpu_s": steps / summary.cpu_s,
        "drift_ev_per_atom_per_ps": summary.drift_ev_per_atom_per_ps,
        f"drift_first_{EARLY_FS:.0f}_fs_ev_per_atom_per_ps": energy_drift(
            time_fs[early], total[early], len(atoms)),
        "total_energy_std_ev": float(total.std()),
        "mean_temperature_K": summary.mean_temperature_K,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained model file (model.pt)")
    parser.add_argument("--steps", type=int, default=4000,
                        help="NVE steps per force mode (default: 4000 = 2 ps)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true",
                        help="100 NVE steps per force mode (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 100

    torch.set_num_threads(1)
    model = load_model(args.model)
    reference = json.loads(REFERENCE.read_text())
    started = time.perf_counter()
    results = {"model": str(args.model), "threads": 1, "quick": args.quick,
               "harmonic": harmonic_comparison(model, reference,
                                               json.loads(RAMAN_REFERENCE.read_text()))}
    with tempfile.TemporaryDirectory() as workdir:
        runs = [("conservative", 0), ("direct", 0)] + [("direct", k) for k in MTS_EVERY] \
            + [("springs", k) for k in SPRING_EVERY]
        results["nve"] = [nve_run(model, reference, forces, args.steps, Path(workdir), every)
                          for forces, every in runs]
    results["wall_s"] = time.perf_counter() - started

    harmonic = results["harmonic"]
    print("mode  DFT (cm^-1)  model (cm^-1)  model - DFT")
    for k, (d, m) in enumerate(zip(harmonic["dft_cm1"], harmonic["model_cm1"]), start=1):
        print(f"{k:4d}  {d:11.1f}  {m:13.1f}  {m - d:+11.1f}")
    print(f"MAE {harmonic['mae_cm1']:.1f} cm^-1 (max {harmonic['max_abs_error_cm1']:.1f}; "
          f"below 2000: {harmonic['mae_below_2000_cm1']:.1f}, above: "
          f"{harmonic['mae_above_2000_cm1']:.1f}); relaxed geometry moved "
          f"{harmonic['max_displacement_from_dft_minimum_angstrom']:.3f} A at most")
    if "raman_pearson_r" in harmonic:
        print(f"Raman activities vs DFT: Pearson r {harmonic['raman_pearson_r']:.3f}")
    for run in results["nve"]:
        if "blew_up" in run:
            print(f"NVE {run['forces']:>16}: {run['blew_up']}")
            continue
        early = run[f"drift_first_{EARLY_FS:.0f}_fs_ev_per_atom_per_ps"]
        print(f"NVE {run['forces']:>16}: {run['steps_per_s']:.0f} steps/s "
              f"({run['steps_per_cpu_s']:.0f} per CPU second), drift "
              f"{run['drift_ev_per_atom_per_ps']:+.2e} eV/atom/ps (first {EARLY_FS:.0f} fs: "
              f"{early:+.2e}), std(E_total) "
              f"{run['total_energy_std_ev']:.2e} eV, <T> {run['mean_temperature_K']:.0f} K")
    if args.out:
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
