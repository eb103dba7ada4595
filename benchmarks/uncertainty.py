"""How well the calibrated uncertainty (LLPR + force disagreement) ranks and sizes the errors.

    .venv/bin/python benchmarks/uncertainty.py                  # trains 3 seeds, ~15 min
    .venv/bin/python benchmarks/uncertainty.py --runs runs/unc  # measure trained runs
    .venv/bin/python benchmarks/uncertainty.py --quick          # seconds, same schema

For every run (tridft's ethanol configuration, 80/10/10 split of the bundled 800
structures with the run's seed, ``--steps`` optimizer steps; the trainer ends by
fitting the LLPR on the training split and calibrating it on validation):

- rank: Spearman correlation, over the held-out test structures, between the
  predicted uncertainty and the actual error: forces per structure (RMS over atoms
  of the predicted standard deviation against the RMS force error), energy
  (|error|), polarizability (RMS over components);
- calibration on the test split: mean of (error / sigma)^2 per component (1 when
  calibrated), the fraction of components within 1, 2, 3 sigma (Gaussian: 68.3,
  95.4, 99.7 %), and a reliability curve (components in 6 bins of predicted sigma:
  RMS predicted sigma against RMS error);
- flagging: the uncertainty of an ethanol with every position scaled by 0.8 about
  its centre, and of dimethyl ether (an isomer the model never saw), against the
  largest uncertainty over all 800 thermal frames;
- cost: CPU time per structure of a forward pass with and without uncertainties.

Results go to docs/results/uncertainty.json, the reliability curve and the rank
scatter to docs/figures/uncertainty.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import ase.build
import numpy as np
import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import FIGURES, RESULTS, environment, setup_logging  # noqa: E402

from tridft.data.batch import collate  # noqa: E402
from tridft.data.io import bundled_dataset_path, read_structures  # noqa: E402
from tridft.data.record import Record  # noqa: E402
from tridft.data.splits import Splits  # noqa: E402
from tridft.files import write_json_atomic  # noqa: E402
from tridft.model.inference import run_model  # noqa: E402
from tridft.model.persistence import load_model  # noqa: E402
from tridft.uncertainty.calibrate import fit_uncertainty  # noqa: E402
from tridft.uncertainty.llpr import per_structure_rms  # noqa: E402

GAUSSIAN_COVERAGE = {1: 0.6827, 2: 0.9545, 3: 0.9973}
QUICK_MODEL = {"features": 8, "layers": 1, "head_hidden": 8, "latent_scalars": 4,
               "latent_vectors": 2, "polarizability_channels": 2}


def train_run(run_dir: Path, seed: int, steps: int, quick: bool) -> None:
    from tridft.train.config import load_config
    from tridft.train.loop import train

    overrides = [f"run_dir={run_dir}", f"training.seed={seed}", f"data.split.seed={seed}",
                 f"training.max_steps={steps}", "training.time_limit_minutes=null",
                 "training.checkpoint_every=100000"]
    if quick:
        overrides += ["data.max_structures=60", "training.validate_every=3",
                      "training.warmup_steps=1", "loss.kl_warmup_steps=1"]
        overrides += [f"model.{key}={value}" for key, value in QUICK_MODEL.items()]
    train(load_config(ROOT / "configs" / "ethanol.yaml", overrides), progress=False)


def outputs(model, records: list[Record], batch_size: int = 64) -> tuple[list, list]:
    batches, results = [], []
    for start in range(0, len(records), batch_size):
        batch = collate(records[start:start + batch_size], model.cutoff,
                        dtype=next(model.parameters()).dtype)
        batches.append(batch)
        results.append(run_model(model, batch, uncertainty=True))
    return batches, results


def per_structure(model, records: list[Record]) -> dict[str, np.ndarray]:
    """Predicted sigma and actual error per structure and per component."""
    batches, results = outputs(model, records)
    rows: dict[str, list] = {k: [] for k in (
        "force_sigma", "force_error", "force_sigma_max", "energy_sigma", "energy_error",
        "polar_sigma", "polar_error", "force_components_sigma", "force_components_error",
        "energy_z", "polar_components_sigma", "polar_components_error")}
    for batch, out in zip(batches, results):
        force_error = (out["forces"] - batch.forces).double()  # (N, 3)
        rows["force_error"].append(per_structure_rms(force_error.pow(2).mean(1).sqrt(), batch))
        rows["force_sigma"].append(per_structure_rms(out["forces_uncertainty"], batch))
        rows["force_sigma_max"].append(out["forces_uncertainty_max"])
        rows["force_components_sigma"].append(out["forces_uncertainty"].repeat_interleave(3))
        rows["force_components_error"].append(force_error.reshape(-1))
        energy_error = (out["energy"] - batch.energy).double()
        rows["energy_error"].append(energy_error.abs())
        rows["energy_sigma"].append(out["energy_uncertainty"])
        polar_error = (out["polarizability"] - batch.polarizability).double().reshape(-1, 9)
        rows["polar_error"].append(polar_error.pow(2).mean(1).sqrt())
        rows["polar_sigma"].append(out["polarizability_uncertainty"])
        rows["polar_components_sigma"].append(
            out["polarizability_uncertainty"].repeat_interleave(9))
        rows["polar_components_error"].append(polar_error.reshape(-1))
        rows["energy_z"].append(energy_error / out["energy_uncertainty"])
    return {k: torch.cat(v).double().numpy() for k, v in rows.items()}


def calibration(sigma: np.ndarray, error: np.ndarray, bins: int = 6) -> dict:
    z = error / sigma
    order = np.argsort(sigma)
    curve = []
    for part in np.array_split(order, bins):
        curve.append({"sigma_rms": float(np.sqrt(np.mean(sigma[part] ** 2))),
                      "error_rms": float(np.sqrt(np.mean(error[part] ** 2))),
                      "n": int(len(part))})
    return {"mean_z2": float(np.mean(z**2)),
            "coverage": {f"{k}sigma": float(np.mean(np.abs(z) <= k)) for k in (1, 2, 3)},
            "gaussian_coverage": {f"{k}sigma": v for k, v in GAUSSIAN_COVERAGE.items()},
            "reliability_curve": curve}


def flagged(model, records: list[Record]) -> dict:
    """Uncertainties of a squeezed ethanol and of dimethyl ether against all thermal frames."""
    _, thermal = outputs(model, records)
    keys = ("energy_uncertainty", "forces_uncertainty_max", "polarizability_uncertainty")
    largest = {k: float(torch.cat([o[k] for o in thermal]).max()) for k in keys}
    median = {k: float(torch.cat([o[k] for o in thermal]).median()) for k in keys}
    reference = records[0]
    centre = reference.positions.mean(axis=0)
    squeezed = replace(reference, positions=(reference.positions - centre) * 0.8 + centre)
    ether = ase.build.molecule("CH3OCH3")
    isomer = Record(numbers=ether.numbers, positions=ether.positions)
    report = {"thermal_frames": len(records), "thermal_max": largest, "thermal_median": median}
    for name, record in (("ethanol_scaled_0.8", squeezed), ("dimethyl_ether", isomer)):
        _, (out,) = outputs(model, [record])
        values = {k: float(out[k][0]) for k in keys}
        report[name] = {"uncertainty": values,
                        "above_every_thermal_frame": {k: values[k] > largest[k] for k in keys},
                        "ratio_to_thermal_max": {k: values[k] / largest[k] for k in keys}}
    return report


def cost(model, records: list[Record]) -> dict:
    """CPU ms per structure, batches of 32 and single structures, best of 5."""
    timings = {}
    for label, size in (("batch_32", 32), ("single", 1)):
        batch = collate(records[:size], model.cutoff, dtype=next(model.parameters()).dtype)
        for mode, kwargs in (("direct", {}), ("conservative", {"forces": "conservative"}),
                             ("uncertainty", {"uncertainty": True})):
            best = np.inf
            for _ in range(5):
                start = time.process_time()
                run_model(model, batch, **kwargs)
                best = min(best, time.process_time() - start)
            timings[f"{label}_{mode}_ms_per_structure"] = 1000 * best / size
    return timings


def measure(run_dir: Path, all_records: list[Record]) -> dict:
    model = load_model(run_dir / "model.pt")
    splits = Splits.load(run_dir / "split.json")
    n = splits.n
    train, validation, test = ([all_records[:n][i] for i in getattr(splits, part)]
                               for part in ("train", "validation", "test"))
    if model.uncertainty is None:  # trained before training calibrated at its end
        model.uncertainty = fit_uncertainty(model, train, validation)
    rows = per_structure(model, test)
    rank = {
        "forces_per_structure": float(spearmanr(rows["force_sigma"], rows["force_error"])[0]),
        "forces_max_atom_vs_rmse": float(spearmanr(rows["force_sigma_max"],
                                                   rows["force_error"])[0]),
        "energy": float(spearmanr(rows["energy_sigma"], rows["energy_error"])[0]),
        "polarizability": float(spearmanr(rows["polar_sigma"], rows["polar_error"])[0]),
    }
    return {"run": str(run_dir), "n_test": len(test),
            "training_steps": model.metadata.get("training", {}).get("total_steps"),
            "test_force_rmse": float(np.sqrt(np.mean(rows["force_error"] ** 2))),
            "spearman": rank,
            "calibration": {
                "forces": calibration(rows["force_components_sigma"],
                                      rows["force_components_error"]),
                "energy": calibration(rows["energy_sigma"], rows["energy_z"]
                                      * rows["energy_sigma"]),
                "polarizability": calibration(rows["polar_components_sigma"],
                                              rows["polar_components_error"])},
            "calibration_fit": model.uncertainty.report,
            "flagging": flagged(model, all_records[:n]),
            "cost_cpu": cost(model, test),
            "scatter": {"force_sigma": rows["force_sigma"].tolist(),
                        "force_error": rows["force_error"].tolist()}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for run in results["runs"]:
        curve = run["calibration"]["forces"]["reliability_curve"]
        sigma = [1000 * p["sigma_rms"] for p in curve]
        axes[0].plot(sigma, [1000 * p["error_rms"] for p in curve], "o-",
                     label=f"seed {run['seed']}")
        axes[1].scatter(1000 * np.array(run["scatter"]["force_sigma"]),
                        1000 * np.array(run["scatter"]["force_error"]), s=10,
                        label=f"seed {run['seed']} (Spearman "
                              f"{run['spearman']['forces_per_structure']:.2f})")
    top = max(max(axes[0].get_xlim()), max(axes[0].get_ylim()))
    axes[0].plot([0, top], [0, top], "k--", lw=1, label="calibrated")
    axes[0].set(xlabel="predicted force σ (meV/Å, RMS in bin)",
                ylabel="actual force error (meV/Å, RMS in bin)",
                title="reliability, test force components")
    axes[1].set(xlabel="predicted force σ per structure (meV/Å)",
                ylabel="force RMSE per structure (meV/Å)", title="rank, test structures")
    for axis in axes:
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", type=Path, default=None,
                        help="trained run folders to measure (default: train --seeds runs)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "uncertainty_benchmark")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_logging()
    torch.set_num_threads(1)
    out = args.out or (Path("/tmp/tridft-uncertainty-quick.json") if args.quick
                       else RESULTS / "uncertainty.json")
    runs = args.runs
    if runs is None:
        runs = []
        for seed in range(1 if args.quick else args.seeds):
            run_dir = args.workdir / ("quick" if args.quick else f"seed{seed}")
            if not (run_dir / "model.pt").is_file() or args.quick:
                train_run(run_dir, seed, 6 if args.quick else args.steps, args.quick)
            runs.append(run_dir)
    records = read_structures(bundled_dataset_path())
    measured = []
    for seed, run_dir in enumerate(runs):
        result = measure(run_dir, records)
        measured.append({"seed": seed, **result})
        print(f"{run_dir}: Spearman forces {result['spearman']['forces_per_structure']:.2f}, "
              f"mean z^2 forces {result['calibration']['forces']['mean_z2']:.2f}")
    spearman = [r["spearman"]["forces_per_structure"] for r in measured]
    results = {"benchmark": "uncertainty", "quick": args.quick, "command": sys.argv,
               "settings": {"steps": args.steps, "config": "configs/ethanol.yaml"},
               **environment(), "runs": measured,
               "summary": {"forces_spearman_mean": float(np.mean(spearman)),
                           "forces_spearman_min": float(np.min(spearman))}}
    write_json_atomic(out, results)
    if not args.quick:
        plot(results, FIGURES / "uncertainty.png")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
