"""Low data: learning curves, and polarizability labels on only a few structures.

    .venv/bin/python benchmarks/low_data.py            # -> docs/results/low_data.json
    .venv/bin/python benchmarks/low_data.py --quick    # seconds, same schema, temporary file

Two grids, full model unless said otherwise (common.py: fixed split, 100 test and
50 validation structures, a training pool of 650; the bundled set has 800 in all):

1. learning curve: the first n of the pool for n = 50, 100, 200, 400, 650;
2. partial labels: all 650 training structures keep energy and forces, but only a
   fraction f = 5, 10, 25, 100 % keep their polarizability (the label is None on
   the others). Question: does the shared latent let the polarizability learn from
   fewer labels? Compared with a single-task polarizability model (loss weights
   zero for energy and forces, no Jacobian term) trained on the same labelled
   structures only.

Every run takes the same number of optimizer steps (common.BASE_SETTINGS). The
points on all 650 structures with every label are the ablations' "full" and
"polarizability_only" runs (the same computation): taken from
docs/results/ablations.json when it holds them, trained here otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SIZES = (50, 100, 200, 400, 650)
FRACTIONS = (0.05, 0.10, 0.25, 1.0)
POLARIZABILITY_ONLY = {"loss": {"weights": {"energy": 0.0, "forces": 0.0,
                                            "conservative_forces": 0.0, "dipole": 0.0,
                                            "polarizability": 1.0},
                                "jacobian_weight": 0.0}}
QUICK_SIZES = (8, 24)
GRIDS = ("learning_curve", "partial_polarizability")
QUICK_FRACTIONS = (0.25, 1.0)


def labelled_subset(n_pool: int, fraction: float, seed: int) -> list[int]:
    """Indices (into the pool) of the structures that keep their polarizability.

    A seeded permutation, so the sets are nested (5 % inside 10 % inside 25 %) and
    the multi-task and single-task models of one seed see the same labels.
    """
    order = np.random.default_rng(1000 + seed).permutation(n_pool)
    count = max(1, int(round(fraction * n_pool)))
    return sorted(order[:count].tolist())


def main(argv=None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=GRIDS, default=None, help="run only this grid")
    args = parser.parse_args(argv)
    common.setup_logging()
    seeds = args.seeds or (1 if args.quick else 2)
    data = common.load_benchmark_data(args.quick)
    base = common.QUICK_SETTINGS if args.quick else common.BASE_SETTINGS
    sizes = QUICK_SIZES if args.quick else SIZES
    fractions = QUICK_FRACTIONS if args.quick else FRACTIONS
    settings = {"base": base, "sizes": list(sizes), "fractions": list(fractions), "seeds": seeds,
                "n_pool": len(data.pool), "n_validation": len(data.validation),
                "n_test": len(data.test), "polarizability_only": POLARIZABILITY_ONLY}
    results = common.ResultsFile.open(common.output_path(args, "low_data"), "low_data",
                                      "benchmarks/low_data.py" + (" --quick" if args.quick else ""),
                                      settings, args.quick, resume=not args.fresh)
    ablations = common.RESULTS / "ablations.json"

    grid: list[dict] = []
    if args.grid in (None, "partial_polarizability"):
        grid += [{"variant": "partial_polarizability", "model": model,
                  "polarizability_fraction": fraction, "seed": seed}
                 for seed in range(seeds) for fraction in fractions
                 for model in ("multi_task", "polarizability_only")]
    if args.grid in (None, "learning_curve"):
        grid += [{"variant": "learning_curve", "model": "multi_task", "n_train": n,
                  "seed": seed} for seed in range(seeds) for n in sizes]

    def run_one(point: dict, workdir: Path) -> dict:
        seed = point["seed"]
        if point["variant"] == "learning_curve":
            n = point["n_train"]
            if n == len(data.pool) and not args.quick:
                reused = common.reusable_run(ablations, {"variant": "full", "seed": seed}, base)
                if reused:
                    return reused
            return common.train_and_test(data.pool[:n], data, {}, seed, workdir)

        fraction, model = point["polarizability_fraction"], point["model"]
        keep = labelled_subset(len(data.pool), fraction, seed)
        if fraction == 1.0 and not args.quick:
            variant = "full" if model == "multi_task" else "polarizability_only"
            reused = common.reusable_run(ablations, {"variant": variant, "seed": seed}, base)
            if reused:
                return {**reused, "n_polarizability_labels": len(keep)}
        if model == "multi_task":
            records = common.copy_records(data.pool)
            kept = set(keep)
            for index, record in enumerate(records):
                if index not in kept:
                    record.polarizability = None  # a missing label, never a zero
            overrides = {}
        else:
            records = [data.pool[i] for i in keep]
            overrides = POLARIZABILITY_ONLY
        metrics = common.train_and_test(records, data, overrides, seed, workdir)
        if model != "multi_task":
            metrics["tasks"] = ["polarizability"]
        return {**metrics, "n_polarizability_labels": len(keep)}

    common.run_grid(results, grid, run_one, args.keep_runs)
    print(results.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
