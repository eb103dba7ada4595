"""Stress and NPT dynamics of liquid water with a trained model.

    .venv/bin/python benchmarks/npt_water.py                    # trains 65 min, then measures (~30 min)
    .venv/bin/python benchmarks/npt_water.py --run runs/water   # a trained water model
    .venv/bin/python benchmarks/npt_water.py --quick            # seconds, same schema

1. Training (unless ``--run``): the 400 DeePMD water cells (64 H2O, 192 atoms;
   energies and forces, /work/shared/data or --data) with tridft's trainer, energy
   and forces, tridft's default objective (direct head, -dE/dR, Jacobian term), two
   layers with a 4.5 A cutoff, ``--minutes`` of training on one thread (batches of two
   cells: the 512-atom budget), float32.
2. Stress check: the float32 model's autograd stress of test cells against central
   finite differences of its energy under the six symmetric strains (step 1e-3), and
   against the same weights in float64 (step 1e-5): largest deviation in eV/A^3.
3. NPT: Berendsen barostat at 300 K and 1 bar from a test cell, conservative forces,
   0.5 fs steps; the instantaneous pressure (ideal-gas term included) and volume of
   every step. Reported: the mean pressure over the second half and its standard
   error from block averages, the volume and density, and an NPT run at 5 kbar from
   the same start to show that the barostat follows its target.

Results: docs/results/npt_water.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import ase
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import RESULTS, environment, setup_logging  # noqa: E402
from water import water_path  # noqa: E402

from tridft.data.batch import collate  # noqa: E402
from tridft.data.io import read_structures  # noqa: E402
from tridft.data.splits import Splits  # noqa: E402
from tridft.errors import TriDFTError  # noqa: E402
from tridft.files import write_json_atomic  # noqa: E402
from tridft.md.calculator import TriDFTCalculator  # noqa: E402
from tridft.md.dynamics import MDSettings, initial_velocities  # noqa: E402
from tridft.md.npt import Barostat, make_npt_integrator, pressure_bar  # noqa: E402
from tridft.model.inference import run_model  # noqa: E402
from tridft.model.persistence import load_model, save_model, with_core_repulsion  # noqa: E402

WATER = water_path()
WATER_MASS_G = 18.015 / 6.02214076e23


def train_water(data: Path, run_dir: Path, minutes: float, quick: bool) -> None:
    """tridft's default objective (direct head, -dE/dR and the Jacobian term) on energies
    and forces, for ``minutes`` of wall time on one thread. NPT needs the energy surface
    itself (its gradient gives the forces, its strain derivative the stress), which the
    default objective supervises through -dE/dR. Two message-passing layers with a 4.5 A
    cutoff instead of three with 5 A: a 192-atom cell has ~14,000 edges at 4.5 A (~0.55 s
    per step of two cells here, against ~1.1 s with the ethanol defaults)."""
    from tridft.train.config import config_from_dict
    from tridft.train.loop import train

    model = {"features": 8, "layers": 1, "head_hidden": 8, "latent_scalars": 4,
             "latent_vectors": 2} if quick else {"layers": 2, "cutoff": 4.5}
    config = config_from_dict({
        "data": {"train": str(data), "split": {"validation": 0.1, "test": 0.1, "seed": 0},
                 "max_structures": 12 if quick else None},
        "model": model,
        "training": {"max_steps": 4 if quick else None, "time_limit_minutes": minutes,
                     "validate_every": 2 if quick else 500, "gradient_cosine_every": None,
                     "num_threads": 1, "warmup_steps": 1 if quick else 50},
        "run_dir": str(run_dir),
    })
    train(config, progress=False, overwrite=quick)  # --quick retrains its scratch run every time


def stress_check(model, records) -> dict:
    """Largest |autograd - finite differences| of the float32 stress, eV/A^3."""
    worst32, worst64, largest = 0.0, 0.0, 0.0
    for record in records:
        batch = collate([record], model.cutoff, dtype=torch.float32)
        stress = run_model(model, batch, stress=True)["stress"][0].double()
        largest = max(largest, float(stress.abs().max()))
        worst32 = max(worst32, float((stress - _fd_stress(model, record, 1e-3)).abs().max()))
        model64 = model.to(torch.float64)
        worst64 = max(worst64, float((stress - _fd_stress(model64, record, 1e-5)).abs().max()))
        model.to(torch.float32)
    return {"cells": len(records), "largest_stress_component": largest,
            "max_deviation_vs_float32_finite_differences": worst32,
            "max_deviation_vs_float64_finite_differences": worst64}


def _fd_stress(model, record, step: float) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    volume = abs(np.linalg.det(record.cell))
    stress = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(a, 3):
            energies = []
            for sign in (1.0, -1.0):
                strain = np.zeros((3, 3))
                strain[a, b] += 0.5 * sign * step
                strain[b, a] += 0.5 * sign * step
                deformation = np.eye(3) + strain
                deformed = replace(record, positions=record.positions @ deformation.T,
                                   cell=record.cell @ deformation.T)
                with torch.no_grad():
                    energies.append(float(model(collate([deformed], model.cutoff,
                                                        dtype=dtype))["energy"][0]))
            stress[a, b] = stress[b, a] = (energies[0] - energies[1]) / (2 * step * volume)
    return stress


def npt_run(model, record, pressure: float, steps: int, seed: int = 0) -> dict:
    atoms = ase.Atoms(numbers=record.numbers, positions=record.positions, cell=record.cell,
                      pbc=True)
    atoms.calc = TriDFTCalculator(model, forces="conservative")
    initial_velocities(atoms, 300.0, seed)
    settings = MDSettings(ensemble="npt", temperature_K=300.0, timestep_fs=0.5, steps=steps,
                          friction_per_fs=0.01,
                          barostat=Barostat(pressure_bar=pressure, coupling_fs=250.0))
    integrator = make_npt_integrator(atoms, settings.barostat, settings.timestep_fs,
                                     settings.temperature_K, settings.friction_per_fs)
    pressures, volumes, temperatures = [], [], []

    def observe():
        pressures.append(pressure_bar(atoms))
        volumes.append(atoms.get_volume())
        temperatures.append(atoms.get_temperature())

    integrator.attach(observe, interval=1)
    start = time.process_time()
    stopped = None
    try:
        integrator.run(steps)
    except TriDFTError as error:  # the model drove the atoms where it knows nothing
        stopped = {"after_steps": len(pressures), "reason": str(error)[:300]}
    cpu = time.process_time() - start
    second = slice(len(pressures) // 2, None)
    p, v = np.array(pressures[second]), np.array(volumes[second])
    blocks = np.array([b.mean() for b in np.array_split(p, 10)])
    n_water = len(atoms) // 3
    return {"target_bar": pressure, "steps": steps, "timestep_fs": 0.5, "stopped": stopped,
            "steps_done": len(pressures),
            "cpu_s_per_step": cpu / max(len(pressures), 1),
            "mean_pressure_bar_second_half": float(p.mean()),
            "pressure_standard_error_bar": float(blocks.std(ddof=1) / np.sqrt(len(blocks))),
            "pressure_fluctuation_bar": float(p.std()),
            "initial_pressure_bar": float(pressures[0]),
            "initial_volume_A3": float(volumes[0]),
            "mean_volume_A3_second_half": float(v.mean()),
            "mean_density_g_cm3_second_half":
                float(n_water * WATER_MASS_G / (v.mean() * 1e-24)),
            "mean_temperature_K": float(np.mean(temperatures[second])),
            "pressure_trace_every_10_steps": [float(x) for x in pressures[::10]],
            "volume_trace_every_10_steps": [float(x) for x in volumes[::10]]}


def run_metrics(run_dir: Path, model) -> dict:
    """The trained run's validation metrics (saved with its model) and test metrics
    (its test_metrics.json, written at the end of training)."""
    test_file = run_dir / "test_metrics.json"
    return {"validation_metrics": model.metadata.get("training", {}).get(
                "validation_metrics", {}),
            "test_metrics": json.loads(test_file.read_text()) if test_file.is_file() else {}}


def _npt_job(model_path: Path, record, pressure: float, steps: int) -> dict:
    torch.set_num_threads(1)
    return npt_run(load_model(model_path), record, pressure, steps)


def npt_runs(model_path: Path, record, targets: list[float], steps: int, jobs: int) -> list:
    """One NPT run per target pressure, ``jobs`` of them at a time in separate processes."""
    if jobs <= 1:
        return [_npt_job(model_path, record, target, steps) for target in targets]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_npt_job, model_path, record, target, steps)
                   for target in targets]
        return [future.result() for future in futures]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a trained water run folder")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where to train (default: runs/npt_water)")
    parser.add_argument("--data", type=Path, default=WATER)
    parser.add_argument("--minutes", type=float, default=65.0, help="training wall time")
    parser.add_argument("--md-steps", type=int, default=8000)
    parser.add_argument("--targets", type=float, nargs="+", default=[1.0, 5000.0],
                        help="NPT target pressures, bar")
    parser.add_argument("--jobs", type=int, default=1,
                        help="NPT runs at once, one process (one thread) each")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_logging()
    torch.set_num_threads(1)
    run_dir = args.run or args.run_dir \
        or ROOT / "runs" / ("npt_water_quick" if args.quick else "npt_water")
    if args.run is None and (args.quick or not (run_dir / "model.pt").is_file()):
        train_water(args.data, run_dir, args.minutes, args.quick)
    model_path = run_dir / "model.pt"
    model = load_model(model_path)
    core_repulsion = "trained with it"
    if model.repulsion is None:  # trained before the prior existed: add it, unchanged inside
        model = with_core_repulsion(model)
        model_path = run_dir / "model_with_core_repulsion.pt"
        save_model(model, model_path, model.metadata)
        core_repulsion = f"added from the model's training domain ({model_path.name})"
    records = read_structures(args.data)
    splits = Splits.load(run_dir / "split.json")
    test = [records[i] for i in splits.test][:2 if args.quick else 5]
    md_steps = 20 if args.quick else args.md_steps
    results = {"benchmark": "npt_water", "quick": args.quick, "command": sys.argv,
               "run": str(run_dir), "core_repulsion": core_repulsion, **environment(),
               **run_metrics(run_dir, model),
               "stress_check": stress_check(model, test),
               "npt": npt_runs(model_path, test[0], args.targets, md_steps,
                               args.jobs)}
    out = args.out or (Path("/tmp/tridft-npt-water-quick.json") if args.quick
                       else RESULTS / "npt_water.json")
    write_json_atomic(out, results)
    for run in results["npt"]:
        print(f"NPT target {run['target_bar']:g} bar: mean {run['mean_pressure_bar_second_half']:.0f}"
              f" +- {run['pressure_standard_error_bar']:.0f} bar, density "
              f"{run['mean_density_g_cm3_second_half']:.3f} g/cm^3")
    print(f"stress check: {results['stress_check']}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
