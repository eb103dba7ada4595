"""Label noise: Gaussian noise on the TRAINING labels, errors against clean test labels.

    .venv/bin/python benchmarks/noise.py            # -> docs/results/noise.json
    .venv/bin/python benchmarks/noise.py --quick    # seconds, same schema, temporary file

Noise levels are set by the force noise sigma_F = 0.05, 0.1, 0.2 eV/A per
component. The energy and polarizability get the SAME relative noise: with
r = sigma_F / rms(F) over the training pool, the energy noise is r * std(E)
(per structure) and the polarizability noise r * std(alpha_ij - mean alpha_ij)
(per independent component, the tensor kept symmetric); the values actually
used are written to the results file. Validation labels get noise of the same
size too (a user's validation data are as noisy as their training data); test
labels stay clean. Each level is trained with the Jacobian regularizer (the full
model) and without it (jacobian_weight 0), seeds 0, 1.

The clean points (sigma_F = 0) are the ablations' "full" and "no_jacobian" runs,
taken from docs/results/ablations.json when it holds them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FORCE_NOISE = (0.0, 0.05, 0.1, 0.2)  # eV/A per component
QUICK_FORCE_NOISE = (0.0, 0.2)
JACOBIAN = {"with": {}, "without": {"loss": {"jacobian_weight": 0.0}}}


def noise_scales(records, sigma_forces: float) -> dict[str, float]:
    """Noise standard deviations matching sigma_forces in relative size (see module doc)."""
    forces = np.concatenate([r.forces.ravel() for r in records])
    energies = np.array([r.energy for r in records])
    alphas = np.stack([r.polarizability for r in records])
    ratio = sigma_forces / float(np.sqrt(np.mean(forces ** 2)))
    return {"forces": sigma_forces,                                    # eV/A
            "energy": ratio * float(np.std(energies)),                 # eV per structure
            "polarizability": ratio * float(np.std(alphas - alphas.mean(axis=0))),  # A^3
            "relative": ratio}


def add_noise(records, scales: dict[str, float], rng: np.random.Generator):
    """Copies of ``records`` with Gaussian noise of the given standard deviations."""
    noisy = common.copy_records(records)
    upper = np.triu_indices(3)
    for record in noisy:
        if record.energy is not None:
            record.energy = float(record.energy + rng.normal(0.0, scales["energy"]))
        if record.forces is not None:
            record.forces = record.forces + rng.normal(0.0, scales["forces"], record.forces.shape)
        if record.polarizability is not None:
            delta = np.zeros((3, 3))
            delta[upper] = rng.normal(0.0, scales["polarizability"], 6)
            delta = delta + np.triu(delta, 1).T  # symmetric, every component sigma
            record.polarizability = record.polarizability + delta
    return noisy


def main(argv=None) -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args(argv)
    common.setup_logging()
    seeds = args.seeds or (1 if args.quick else 2)
    data = common.load_benchmark_data(args.quick)
    base = common.QUICK_SETTINGS if args.quick else common.BASE_SETTINGS
    levels = QUICK_FORCE_NOISE if args.quick else FORCE_NOISE
    scales = {str(level): noise_scales(data.pool, level) for level in levels}
    settings = {"base": base, "force_noise": list(levels), "noise_scales": scales,
                "seeds": seeds, "n_train": len(data.pool), "n_validation": len(data.validation),
                "n_test": len(data.test), "jacobian": JACOBIAN}
    results = common.ResultsFile.open(common.output_path(args, "noise"), "noise",
                                      "benchmarks/noise.py" + (" --quick" if args.quick else ""),
                                      settings, args.quick, resume=not args.fresh)
    ablations = common.RESULTS / "ablations.json"
    grid = [{"variant": "noise", "jacobian": jacobian, "noise_forces": level, "seed": seed}
            for seed in range(seeds) for level in levels for jacobian in JACOBIAN]

    def run_one(point: dict, workdir: Path) -> dict:
        level, seed = point["noise_forces"], point["seed"]
        overrides = JACOBIAN[point["jacobian"]]
        if level == 0.0 and not args.quick:
            variant = "full" if point["jacobian"] == "with" else "no_jacobian"
            reused = common.reusable_run(ablations, {"variant": variant, "seed": seed}, base)
            if reused:
                return reused
        rng = np.random.default_rng([seed, int(round(level * 1000))])
        train = add_noise(data.pool, scales[str(level)], rng)
        noisy = common.Benchmark(train, add_noise(data.validation, scales[str(level)], rng),
                                 data.test, data.splits, data.quick)
        return common.train_and_test(train, noisy, overrides, seed, workdir)

    common.run_grid(results, grid, run_one, args.keep_runs)
    print(results.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
