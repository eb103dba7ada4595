"""Many molecules: QM7b CCSD polarizabilities and dipoles of molecules never seen in training.

    .venv/bin/python benchmarks/qm7b.py curve       # ~15 min -> docs/results/qm7b_curve.json
    .venv/bin/python benchmarks/qm7b.py transfer    # ~40 min -> docs/results/qm7b_transfer.json
    .venv/bin/python benchmarks/qm7b.py multitask   # ~30 min -> docs/results/qm7b_multitask.json
    .venv/bin/python benchmarks/qm7b.py SECTION --quick   # seconds, same schema, temp file
    .venv/bin/python benchmarks/qm7b.py plots       # docs/figures/qm7b_*.png from the results
    .venv/bin/python benchmarks/qm7b.py base-molecules --out BASE.extxyz  # to label, below

Data: ../shared/data/qm7b_ccsd_alpha_mu_1000.extxyz, 1000 different molecules (5-23
atoms; H C N O S Cl), CCSD polarizability tensors and dipoles in atomic units, read
with tridft's unit conversion (A^3, e*A). One split by molecule for every section,
the one `tridft train --set data.split.validation=50 --set data.split.test=50` makes
(tridft.data.splits.make_splits(1000, (900, 50, 50), seed=0)): 900 pool, 50
validation, 50 test molecules. Nothing is tuned on the test molecules.

Sections (each its own results file; every run trains with tridft's defaults unless
said, one torch thread, and a fixed number of optimizer steps, so that the numbers
do not depend on what else the machine runs):

    curve      learning curve: the default model trained on both labels from the first
               100, 250, 500 and 900 pool molecules, 3000 steps each.
    transfer   the latent's transfer claim across chemistry. Pool cut in two disjoint
               parts: base molecules pool[:400], new-label molecules pool[400:] (500).
               forward: a base model trained on the POLARIZABILITY of the base
               molecules (no dipoles); a dipole head learned from n = 10, 25, 50, 100,
               200, 500 new-label molecules: (a) on its frozen latent, (b) fine-tuned,
               (c) the same architecture from scratch on the n dipoles alone.
               reverse: a base model trained on the DIPOLES of the base molecules; a
               polarizability head from n new-label molecules, (a) (b) (c) likewise.
               Two seeds (which n molecules). With --pretrain LABELS.extxyz the base
               models also learn energies and forces of the base molecules, e.g. at
               a cheap level of theory: `tridft label BASE.extxyz -o LABELS.extxyz
               --xc HF --basis sto-3g --auxbasis auto` (~3 CPU-s per molecule;
               benchmarks/data/qm7b_base_hf_sto3g.extxyz.gz); --pretrain-dipoles adds
               that file's dipoles to the forward base model (multi-fidelity).
    multitask  partial labels: polarizability on all 900, dipole on 10, 25, 50 % of them
               (multi-task) against the dipole model trained on that subset alone;
               label noise: Gaussian noise of half the label's spread on both labels,
               multi-task against each single task; interference: the cosine between
               the two tasks' gradients on the shared parameters during the clean
               multi-task run (tridft logs it every 250 steps).

Metric: MAE over the components (9 of the polarizability, A^3; 3 of the dipole, e*A)
on the 50 test molecules.
"""

from __future__ import annotations

import copy
import csv
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import transfer as transfer_benchmark  # noqa: E402

from tridft.data.dataset import GraphDataset  # noqa: E402
from tridft.data.io import KeyMap, read_structures  # noqa: E402
from tridft.data.record import Record  # noqa: E402
from tridft.data.splits import make_splits  # noqa: E402
from tridft.train.config import config_from_dict  # noqa: E402
from tridft.train.loop import train  # noqa: E402
from tridft.transfer.finetune import evaluate_target  # noqa: E402
from tridft.transfer.targets import Target  # noqa: E402
from tridft.units import UnitSpec  # noqa: E402

DATA = common.ROOT.parent / "shared" / "data" / "qm7b_ccsd_alpha_mu_1000.extxyz"
KEYS = KeyMap(energy=None, forces=None, polarizability="alpha_au", dipole="mu_au")
UNITS = UnitSpec(polarizability="bohr^3", dipole="e*bohr")
SPLIT = (900, 50, 50)  # pool, validation, test molecules
N_BASE = 400  # transfer: base molecules pool[:N_BASE], new-label molecules pool[N_BASE:]
QUICK_SPLIT = (40, 8, 8)
QUICK_BASE = 16

DIPOLE = Target("dipole", "dipole")
CCSD_DIPOLE = Target("dipole_ccsd", "dipole")  # beside a base model's own dipole head
# A polarizability head attached by fine-tuning is a structure tensor head; its labels
# live in Record.extra under this name.
ALPHA = Target("alpha", "structure_tensor")
VARIANTS = ("frozen", "finetuned", "scratch")

TRAINING = {"max_steps": 3000, "time_limit_minutes": None, "batch_size": 16,
            "validate_every": 250, "checkpoint_every": 100000, "log_every": 50,
            "gradient_cosine_every": 250, "num_threads": 1, "seed": 0}
SETTINGS = {
    "curve": {"n_train": [100, 250, 500, 900], "training": TRAINING},
    "transfer": {
        "label_counts": [10, 25, 50, 100, 200, 500],
        "base": {"training": TRAINING},
        # As benchmarks/transfer.py: early stopping on 20 % of the n labels; the frozen
        # head trains on cached latents, so it gets 5x the steps at similar cost.
        "finetune": {"lr": 3e-3, "batch_size": 16, "validation_fraction": 0.2,
                     "pretrained_lr_factor": 0.1,
                     "steps": {"frozen": 3000, "finetuned": 600, "scratch": 600},
                     "patience": {"frozen": 30, "finetuned": 15, "scratch": 15}}},
    "multitask": {"dipole_fractions": [0.1, 0.25, 0.5], "noise_fraction_of_spread": 0.5,
                  "training": TRAINING},
}
QUICK_TRAINING = {**TRAINING, "max_steps": 6, "validate_every": 3, "log_every": 2,
                  "gradient_cosine_every": 2}
QUICK_SETTINGS = {
    "curve": {"n_train": [10, 40], "training": QUICK_TRAINING},
    "transfer": {
        "label_counts": [6, 10], "base": {"training": QUICK_TRAINING},
        "finetune": {"lr": 3e-3, "batch_size": 4, "validation_fraction": 0.2,
                     "pretrained_lr_factor": 0.1,
                     "steps": {"frozen": 10, "finetuned": 6, "scratch": 6},
                     "patience": {"frozen": 15, "finetuned": 15, "scratch": 15}}},
    "multitask": {"dipole_fractions": [0.5], "noise_fraction_of_spread": 0.5,
                  "training": QUICK_TRAINING},
}
# The small model of the quick runs (seconds, same code paths).
QUICK_MODEL = {"features": 16, "layers": 1, "radial_basis": 8, "head_hidden": 16,
               "latent_scalars": 4, "latent_vectors": 2, "polarizability_channels": 2,
               "polarizability_edge_basis": 2}


class Molecules:
    """The split: pool, validation and test molecules (internal units)."""

    def __init__(self, quick: bool):
        records = read_structures(DATA, KEYS, UNITS)
        sizes = QUICK_SPLIT if quick else SPLIT
        splits = make_splits(len(records), SPLIT, seed=0)
        self.pool = [records[i] for i in splits.train][:sizes[0]]
        self.validation = [records[i] for i in splits.validation][:sizes[1]]
        self.test = [records[i] for i in splits.test][:sizes[2]]
        self.quick = quick


def main(argv=None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("section", choices=sorted(SETTINGS) + ["plots", "base-molecules"])
    parser.add_argument("--model", default="", metavar="KEY=VALUE,...",
                        help="model options of every trained model (transfer: the base and "
                             "scratch models), e.g. latent_scalars=null,latent_vectors=null "
                             "for an uncompressed latent; YAML values")
    parser.add_argument("--training", default="", metavar="KEY=VALUE,...",
                        help="training options of every trained model (transfer: the base "
                             "models), e.g. position_noise=0.02; YAML "
                             "values")
    parser.add_argument("--label-counts", default=None, metavar="N,...",
                        help="transfer: these label counts instead of the default grid")
    parser.add_argument("--variants", default=None, metavar="NAME,...",
                        help=f"transfer: a subset of {','.join(VARIANTS)}")
    parser.add_argument("--pretrain", type=Path, default=None, metavar="LABELS.extxyz",
                        help="transfer: the base models also learn the energies and forces "
                             "of the base molecules from this file (`tridft label` output "
                             "for the molecules benchmarks/qm7b.py base-molecules writes, "
                             "matched by its source_index)")
    parser.add_argument("--pretrain-dipoles", action="store_true",
                        help="transfer with --pretrain: the forward base model also learns "
                             "that file's dipoles (a cheaper level of theory than the new "
                             "labels); the reverse direction is left out")
    args = parser.parse_args(argv)
    if args.pretrain_dipoles and not args.pretrain:
        parser.error("--pretrain-dipoles needs --pretrain LABELS.extxyz")
    if args.section == "plots":
        plot_results(common.RESULTS, common.FIGURES)
        return 0
    if args.section == "base-molecules":  # the structures to label for --pretrain
        molecules = Molecules(args.quick)
        path = args.out or common.ROOT / "runs" / "qm7b_base_molecules.extxyz"
        common.write_extxyz([replace(r, polarizability=None, dipole=None) for r in
                             molecules.pool[:QUICK_BASE if args.quick else N_BASE]], path)
        print(f"base molecules: {path}")
        return 0
    common.setup_logging()
    logging.getLogger("tridft.transfer.finetune").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    settings = copy.deepcopy((QUICK_SETTINGS if args.quick else SETTINGS)[args.section])
    if args.model:
        settings["model"] = key_values(args.model)
        if "base" in settings:  # transfer: the base models (the scratch ones copy them)
            settings["base"]["model"] = settings["model"]
    if args.training:
        changes = key_values(args.training)
        for training in (settings.get("training"), settings.get("base", {}).get("training")):
            if training is not None:
                training.update(changes)
    if args.label_counts:
        settings["label_counts"] = [int(n) for n in args.label_counts.split(",")]
    if args.variants:
        settings["variants"] = args.variants.split(",")
    if args.pretrain:
        settings["pretrain"] = str(args.pretrain)
        settings["pretrain_dipoles"] = args.pretrain_dipoles
    molecules = Molecules(args.quick)
    name = f"qm7b_{args.section}"
    results = common.ResultsFile.open(
        common.output_path(args, name), name,
        " ".join(["benchmarks/qm7b.py", *(sys.argv[1:] if argv is None else argv)]),
        {**settings, "base": settings.get("base", settings.get("training")),
         "split": {"pool": len(molecules.pool), "validation": len(molecules.validation),
                   "test": len(molecules.test), "seed": 0},
         "metric": "MAE over components on the test molecules: polarizability A^3, "
                   "dipole e*A"},
        args.quick, resume=not args.fresh)
    # Base models are reused from here: another --model gets another folder.
    tag = "".join("-" + options.replace("=", "_").replace(",", "-")
                  for options in (args.model, args.training) if options)
    tag += f"-pretrain_{args.pretrain.name.split('.')[0]}" if args.pretrain else ""
    tag += "-dipoles" if args.pretrain and args.pretrain_dipoles else ""
    keep = args.keep_runs or common.ROOT / "runs" / (name + tag + ("-quick" if args.quick else ""))
    section = {"curve": curve, "transfer": transfer, "multitask": multitask}[args.section]
    section(molecules, settings, results, keep, args.seeds or (1 if args.quick else 2))
    print(markdown(args.section, results.runs))
    print(f"results: {results.path}")
    return 0


def key_values(options: str) -> dict:
    """``"a=1,b=null"`` (a --model or --training option) -> {"a": 1, "b": None}: YAML values."""
    return {key: yaml.safe_load(value) for key, value in
            (item.split("=", 1) for item in options.split(","))}


# ---- training a model on labelled molecules --------------------------------------------------


def train_model(train_records: list[Record], molecules: Molecules, training: dict,
                workdir: Path, seed: int = 0, model: dict | None = None) -> tuple[dict, Path]:
    """tridft's default training on these records; test metrics, run facts, model path."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = {name: workdir / f"{name}.extxyz" for name in ("train", "validation", "test")}
    common.write_extxyz(train_records, files["train"])
    common.write_extxyz(molecules.validation, files["validation"])
    common.write_extxyz(molecules.test, files["test"])
    settings = {"data": {"train": str(files["train"]), "validation": str(files["validation"]),
                         "test": str(files["test"])},
                "training": {**training, "seed": seed}, "run_dir": str(workdir / "run")}
    if molecules.quick:
        settings["model"] = QUICK_MODEL
    if model:
        settings["model"] = {**settings.get("model", {}), **model}
    started = time.process_time()
    # A run directory left by an interrupted run is started again (completed runs are
    # in the results file and not run again).
    result = train(config_from_dict(settings), progress=False, overwrite=True)
    metrics = {k: v for k, v in result.test_metrics.items() if isinstance(v, (int, float))}
    return ({**metrics, "steps": result.steps, "epochs": result.epochs,
             "n_train": len(train_records), "train_time_s": result.elapsed_s,
             "train_cpu_s": time.process_time() - started,
             "gradient_cosines": mean_gradient_cosines(result.run_dir / "metrics.csv")},
            result.best_model_path)


def mean_gradient_cosines(metrics_csv: Path) -> dict:
    """Mean and last logged cosine per task pair (columns cos_<a>|<b> of metrics.csv)."""
    if not metrics_csv.is_file():
        return {}
    with metrics_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    cosines = {}
    for column in (rows[0].keys() if rows else ()):
        if column.startswith("cos_"):
            values = [float(row[column]) for row in rows if row.get(column)]
            if values:
                cosines[column[4:]] = {"mean": float(np.mean(values)), "last": values[-1],
                                       "n": len(values)}
    return cosines


def only(records: list[Record], keep: str) -> list[Record]:
    """The records with one label kept ("polarizability" or "dipole")."""
    if keep == "polarizability":
        return [replace(r, dipole=None) for r in records]
    return [replace(r, polarizability=None) for r in records]


# ---- curve ----------------------------------------------------------------------------------


def curve(molecules: Molecules, settings: dict, results, keep: Path, seeds: int) -> None:
    grid = [{"variant": "both_labels", "n_train": n, "seed": 0} for n in settings["n_train"]]

    def run_one(point: dict, workdir: Path) -> dict:
        metrics, _ = train_model(molecules.pool[:point["n_train"]], molecules,
                                 settings["training"], workdir, model=settings.get("model"))
        return metrics

    common.run_grid(results, grid, run_one, keep_runs=keep)


# ---- transfer --------------------------------------------------------------------------------


def transfer(molecules: Molecules, settings: dict, results, keep: Path, seeds: int) -> None:
    n_base = QUICK_BASE if molecules.quick else N_BASE
    base, new = molecules.pool[:n_base], molecules.pool[n_base:]
    directions = {"forward": ("polarizability", DIPOLE), "reverse": ("dipole", ALPHA)}
    if settings.get("pretrain_dipoles"):
        # No reverse: its base model learns the CCSD dipoles themselves. The forward base
        # model has a dipole head of its own (the cheap dipoles), so the new one, learning
        # the CCSD dipoles of Record.dipole, needs another name.
        directions = {"forward": ("polarizability", CCSD_DIPOLE)}
    base_paths = {}
    for direction, (base_label, _) in directions.items():
        workdir = keep / f"base-{direction}"
        model_path = workdir / "run" / "model.pt"
        if not model_path.is_file():
            common.logger.info("training the %s base model (%s of %d molecules)", direction,
                               base_label, len(base))
            metrics, model_path = train_model(base_records(base, base_label, settings),
                                              molecules,
                                              settings["base"]["training"], workdir,
                                              model=settings["base"].get("model"))
            results.settings[f"base_{direction}"] = metrics
            results.write()
        base_paths[direction] = model_path
    test_sets = {direction: new_label_records(molecules.test, target)
                 for direction, (_, target) in directions.items()}
    grid = [{"variant": variant, "direction": direction, "n_train": n, "seed": seed}
            for direction in directions for seed in range(seeds)
            for n in settings["label_counts"]
            for variant in settings.get("variants", VARIANTS)]

    def run_one(point: dict, workdir: Path) -> dict:
        target = directions[point["direction"]][1]
        order = np.random.default_rng(point["seed"]).permutation(len(new))
        labels = new_label_records([new[i] for i in order[:point["n_train"]]], target)
        return fit_and_test(point["variant"], target, labels, base_paths[point["direction"]],
                            test_sets[point["direction"]], settings["finetune"],
                            point["seed"])

    common.run_grid(results, grid, run_one)


def base_records(base: list[Record], base_label: str, settings: dict) -> list[Record]:
    """The base molecules as a base model learns them: ``base_label`` (CCSD), and with
    --pretrain the energies and forces (--pretrain-dipoles: and dipoles) of that file."""
    records = only(base, base_label)
    if settings.get("pretrain"):
        records = with_pretraining_labels(records, Path(settings["pretrain"]),
                                          dipoles=settings.get("pretrain_dipoles", False))
    return records


def with_pretraining_labels(base: list[Record], path: Path,
                            dipoles: bool = False) -> list[Record]:
    """The base molecules with the energies and forces (and the dipoles, if ``dipoles``) of
    ``path``: `tridft label` output for the structures of the base-molecules section,
    whose frame i is base[i]."""
    # `tridft label` appends frames as they finish; source_index is the input's frame.
    labelled = read_structures(path, KeyMap(polarizability=None,
                                            extra={"source_index": "source_index"}))
    unindexed = [r.source for r in labelled if "source_index" not in r.extra]
    if unindexed:
        raise SystemExit(f"{unindexed[0]}: no source_index; label the base-molecules file "
                         f"with `tridft label`")
    by_index = {int(r.extra["source_index"]): r for r in labelled}
    missing = [i for i in range(len(base)) if i not in by_index]
    if missing:
        raise SystemExit(f"{path}: no labels for {len(missing)} of the {len(base)} base "
                         f"molecules (first: source_index {missing[0]}); finish the labelling")
    out = []
    for i, record in enumerate(base):
        labels = by_index[i]
        if not (np.array_equal(labels.numbers, record.numbers)
                and np.allclose(labels.positions, record.positions, atol=1e-6)):
            raise SystemExit(f"{path}: source_index {i} is not base molecule {i} (atoms or "
                             f"positions differ): label the base-molecules file")
        if dipoles and labels.dipole is None:
            raise SystemExit(f"{path}: source_index {i} has no dipole; label with "
                             f"--properties energy,forces,dipole")
        out.append(replace(record, energy=labels.energy, forces=labels.forces,
                           dipole=labels.dipole if dipoles else record.dipole))
    return out


def new_label_records(records: list[Record], target: Target) -> list[Record]:
    """Records carrying only ``target``'s label, where a fine-tuned head reads it."""
    if target.kind == "dipole":
        return [replace(r, polarizability=None) for r in records]
    return [replace(r, polarizability=None, dipole=None,
                    extra={**r.extra, target.name: np.asarray(r.polarizability).reshape(3, 3)})
            for r in records]


def fit_and_test(variant: str, target: Target, labels: list[Record], base_path: Path,
                 test: list[Record], settings: dict, seed: int) -> dict:
    """One new head, fitted as benchmarks/transfer.py fits them; its test error."""
    model, result, elapsed = transfer_benchmark.fit_new_head(variant, target, labels,
                                                             base_path, settings, seed)
    metrics = evaluate_target(model, target, GraphDataset(test, model.cutoff))
    key = "dipole_mae" if target.kind == "dipole" else "polarizability_mae"
    return {key: metrics["mae"], "validation_mae": result.validation["mae"],
            "steps": result.steps, "best_step": result.best_step, "time_s": elapsed}


# ---- multitask -------------------------------------------------------------------------------


def multitask(molecules: Molecules, settings: dict, results, keep: Path, seeds: int) -> None:
    pool = molecules.pool
    grid = [{"variant": "multi_task_clean", "seed": 0},
            *({"variant": f"partial_{fraction}_{kind}", "seed": 0}
              for fraction in settings["dipole_fractions"]
              for kind in ("multi_task", "dipole_only")),
            *({"variant": f"noisy_{kind}", "seed": 0}
              for kind in ("multi_task", "polarizability_only", "dipole_only"))]

    def run_one(point: dict, workdir: Path) -> dict:
        variant = point["variant"]
        if variant == "multi_task_clean":
            records = pool
        elif variant.startswith("partial_"):
            fraction = float(variant.split("_")[1])
            labelled = labelled_subset(pool, fraction)
            if variant.endswith("dipole_only"):
                records = only([pool[i] for i in sorted(labelled)], "dipole")
            else:
                records = [r if i in labelled else replace(r, dipole=None)
                           for i, r in enumerate(pool)]
        else:
            records = noisy(pool, settings["noise_fraction_of_spread"])
            if variant.endswith("polarizability_only"):
                records = only(records, "polarizability")
            elif variant.endswith("dipole_only"):
                records = only(records, "dipole")
        metrics, _ = train_model(records, molecules, settings["training"], workdir,
                                 model=settings.get("model"))
        return {**metrics, "n_dipole_labels": sum(r.dipole is not None for r in records)}

    common.run_grid(results, grid, run_one, keep_runs=keep)


def labelled_subset(pool: list[Record], fraction: float) -> set[int]:
    """A random ``fraction`` of the pool (seed 0) holding every element of the pool: a
    model never trained on an element refuses the molecules that contain it, so the
    dipole-only model must see each (one molecule per missing element is swapped in)."""
    order = np.random.default_rng(0).permutation(len(pool)).tolist()
    chosen = order[:round(fraction * len(pool))]
    for z in sorted({int(z) for r in pool for z in r.numbers}):
        if not any(z in pool[i].numbers for i in chosen):
            donor = next(i for i in order if z in pool[i].numbers and i not in chosen)
            # Replace the last chosen molecule whose elements stay covered without it.
            for k in range(len(chosen) - 1, -1, -1):
                rest = chosen[:k] + chosen[k + 1:] + [donor]
                if all(any(y in pool[i].numbers for i in rest)
                       for y in {int(y) for i in chosen for y in pool[i].numbers}):
                    chosen = rest
                    break
    return set(chosen)


def noisy(records: list[Record], fraction: float) -> list[Record]:
    """Both labels plus Gaussian noise of ``fraction`` x their component spread (seed 0).

    The polarizability's noise is symmetrised (a symmetric tensor stays one), with
    the same standard deviation on the diagonal as on the vector components.
    """
    rng = np.random.default_rng(0)
    alpha_spread = np.std([r.polarizability for r in records])
    mu_spread = np.std([r.dipole for r in records])

    def symmetric_noise() -> np.ndarray:
        noise = rng.standard_normal((3, 3))
        return (noise + noise.T) / 2 ** 0.5 * np.where(np.eye(3) > 0, 2 ** -0.5, 1.0)

    return [replace(r, polarizability=np.asarray(r.polarizability).reshape(3, 3)
                    + fraction * alpha_spread * symmetric_noise(),
                    dipole=r.dipole + fraction * mu_spread * rng.standard_normal(3))
            for r in records]


# ---- tables ----------------------------------------------------------------------------------


def markdown(section: str, runs: list[dict]) -> str:
    """A table of the runs (mean over seeds where there are several)."""
    def cell(values: list[float]) -> str:
        if not values:
            return "-"
        if len(values) == 1:
            return f"{values[0]:.4f}"
        return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"

    if section == "transfer":
        lines = []
        for direction, key, unit in (("forward", "dipole_mae", "e*A"),
                                     ("reverse", "polarizability_mae", "A^3")):
            lines += [f"\n{direction}: test {key} ({unit})",
                      "| labels | " + " | ".join(VARIANTS) + " |", "|---:|---:|---:|---:|"]
            for n in sorted({r["n_train"] for r in runs if r.get("direction") == direction}):
                lines.append(f"| {n} | " + " | ".join(
                    cell([r[key] for r in runs if r.get("direction") == direction
                          and r["n_train"] == n and r["variant"] == variant])
                    for variant in VARIANTS) + " |")
        return "\n".join(lines)
    lines = ["| run | molecules | dipole labels | polarizability MAE (A^3) | "
             "dipole MAE (e*A) | steps |", "|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        lines.append(f"| {run['variant']} | {run.get('n_train', '-')} | "
                     f"{run.get('n_dipole_labels', '-')} | "
                     f"{cell([run['polarizability_mae']] if 'polarizability_mae' in run else [])}"
                     f" | {cell([run['dipole_mae']] if 'dipole_mae' in run else [])} | "
                     f"{run.get('steps', '-')} |")
    return "\n".join(lines)


def plot_results(results: Path, figures: Path) -> None:
    """Learning curve and transfer curves (test MAE against labelled molecules, log-log)."""
    import json

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tridft.files import atomic_output

    def save(figure, name):
        with atomic_output(figures / name) as temporary:
            figure.savefig(temporary, format="png", dpi=120)

    curve_file, transfer_file = results / "qm7b_curve.json", results / "qm7b_transfer.json"
    if curve_file.is_file():
        runs = sorted(json.loads(curve_file.read_text())["runs"], key=lambda r: r["n_train"])
        figure = Figure(figsize=(8, 3.4), layout="constrained")
        FigureCanvasAgg(figure)
        for axes, key, unit in zip(figure.subplots(1, 2), ("polarizability_mae", "dipole_mae"),
                                   ("Å³", "e Å")):
            axes.loglog([r["n_train"] for r in runs], [r[key] for r in runs], "o-")
            axes.set_xlabel("training molecules")
            axes.set_ylabel(f"test MAE ({unit})")
            axes.set_title(key.split("_")[0])
        save(figure, "qm7b_curve.png")
    if transfer_file.is_file():
        runs = json.loads(transfer_file.read_text())["runs"]
        figure = Figure(figsize=(8, 3.4), layout="constrained")
        FigureCanvasAgg(figure)
        for axes, direction, key, title in zip(
                figure.subplots(1, 2), ("forward", "reverse"),
                ("dipole_mae", "polarizability_mae"),
                ("dipole on a polarizability latent", "polarizability on a dipole latent")):
            for variant in VARIANTS:
                points = {}
                for r in runs:
                    if r["direction"] == direction and r["variant"] == variant:
                        points.setdefault(r["n_train"], []).append(r[key])
                n = sorted(points)
                axes.loglog(n, [np.mean(points[k]) for k in n], "o-", label=variant)
            axes.set_xlabel("labelled molecules")
            axes.set_ylabel("test MAE")
            axes.set_title(title, fontsize=10)
            axes.legend(fontsize=8)
        save(figure, "qm7b_transfer.png")


if __name__ == "__main__":
    sys.exit(main())
