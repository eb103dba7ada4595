"""Ablations of tridft on the bundled ethanol data: which part of the model does what.

    .venv/bin/python benchmarks/ablations.py            # full run -> docs/results/ablations.json
    .venv/bin/python benchmarks/ablations.py --quick    # seconds, same schema, temporary file

Every variant trains on the same 650 training structures (fixed split, see
common.py) for the same number of steps, with seeds 0, 1, ...; test MAEs on the
100 test structures, the force consistency error |F_direct + dE/dR| and the
train time. Variants differ from the full model only by the overrides below.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SINGLE_TASK = {"jacobian_weight": 0.0}  # the regularizer couples energy and forces: off
# Labels of the data that a single-task variant must not train (unnamed ones would be).
NONE = {"energy": 0.0, "forces": 0.0, "conservative_forces": 0.0, "polarizability": 0.0,
        "dipole": 0.0}

VARIANTS: dict[str, dict] = {
    # The full model: bottleneck, Jacobian regularizer, fixed loss weights.
    "full": {},
    "no_jacobian": {"loss": {"jacobian_weight": 0.0}},
    # The force loss on -dE/dR instead of the direct head (training.force_source), so
    # that the energy surface learns from the forces as in conservative models.
    "conservative_forces": {"training": {"force_source": "conservative"}},
    "no_bottleneck": {"model": {"latent_scalars": None, "latent_vectors": None},
                      "loss": {"kl_beta": 0.0}},
    "energy_only": {"loss": {"weights": {**NONE, "energy": 1.0}, **SINGLE_TASK}},
    "forces_only": {"loss": {"weights": {**NONE, "forces": 1.0}, **SINGLE_TASK}},
    "polarizability_only": {"loss": {"weights": {**NONE, "polarizability": 1.0},
                                     **SINGLE_TASK}},
    # Loss balancing strategies ("full" is the fixed-weight one).
    "uncertainty": {"loss": {"balancing": "uncertainty"}},
    "gradnorm": {"loss": {"balancing": "gradnorm"}},
    "fixed_pcgrad": {"loss": {"balancing": "fixed", "pcgrad": True}},
}
# Which metrics a variant is judged on (single-task models only on their task).
TASKS_OF = {"energy_only": ["energy"], "forces_only": ["forces"],
            "polarizability_only": ["polarizability"]}


def main(argv=None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of: " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    common.setup_logging()
    seeds = args.seeds or (1 if args.quick else 2)
    data = common.load_benchmark_data(args.quick)
    settings = {"base": common.QUICK_SETTINGS if args.quick else common.BASE_SETTINGS,
                "variants": VARIANTS, "seeds": seeds, "n_train": len(data.pool),
                "n_validation": len(data.validation), "n_test": len(data.test)}
    results = common.ResultsFile.open(common.output_path(args, "ablations"), "ablations",
                                      "benchmarks/ablations.py" + (" --quick" if args.quick else ""),
                                      settings, args.quick, resume=not args.fresh)
    grid = [{"variant": name, "seed": seed} for seed in range(seeds) for name in names]

    def run_one(point: dict, workdir: Path) -> dict:
        metrics = common.train_and_test(data.pool, data, VARIANTS[point["variant"]],
                                        point["seed"], workdir)
        metrics["tasks"] = TASKS_OF.get(point["variant"], list(common.TASKS))
        return metrics

    common.run_grid(results, grid, run_one, args.keep_runs)
    print(results.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
