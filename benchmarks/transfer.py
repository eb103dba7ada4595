"""Transfer: ethanol dipoles from a handful of labels on a trained model's frozen latent.

    .venv/bin/python benchmarks/transfer.py            # ~25 min -> docs/results/transfer.json
    .venv/bin/python benchmarks/transfer.py --quick    # seconds, same schema, temporary file

The claim under test: a dipole head on the frozen latent of a model trained on
energies, forces and polarizabilities of OTHER structures reaches with 50 dipole
labels the accuracy that a model trained from scratch on dipoles alone needs
several hundred labels for.

Structures: the benchmarks' fixed split of the bundled 800 ethanol (common.py):
100 test structures (held out for every method), 50 validation, 650 in the pool.
The pool is cut in two disjoint parts:

    base frames    pool[:400]  energies, forces, polarizabilities (dipoles removed):
                               the base model is trained on these once, with
                               tridft.train.loop.train, validated on the 50 validation
                               structures (dipoles removed)
    dipole frames  pool[400:]  250 structures whose dipoles are the new labels

For every seed the dipole frames are shuffled and the first n (10, 25, 50, 100,
200; nested) are the labels; tridft.transfer.finetune holds 20% of them out for
early stopping, so every method sees exactly the same n labels. Methods:

    frozen     (a) a dipole head on the base model's frozen latent
    finetuned  (b) the same head, with backbone and bottleneck trained too (lr x 0.1)
    scratch    (c) the same architecture from random weights, trained on the dipoles
                   alone (also with 400 labels: the dipole frames, then base frames,
                   whose dipoles the base model never saw)

and two controls that say what the numbers mean:

    untrained_frozen  the frozen-latent head of (a) on a model with random weights:
                      what the pre-training of the latent adds
    rigid_charges     one fixed point charge per atom (ethanol's atoms come in the same
                      order in every frame; 8 free charges, neutral), fitted to the n
                      labels by least squares: how far a geometry-only model gets

Metric: MAE over the dipole components on the 100 test structures, e*Angstrom.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from tridft.data.dataset import GraphDataset  # noqa: E402
from tridft.data.record import Record  # noqa: E402
from tridft.files import atomic_output, write_json_atomic  # noqa: E402
from tridft.model.model import build_model  # noqa: E402
from tridft.model.persistence import load_model  # noqa: E402
from tridft.train.config import config_from_dict  # noqa: E402
from tridft.train.loop import train  # noqa: E402
from tridft.transfer.finetune import FinetuneOptions, evaluate_target, finetune  # noqa: E402
from tridft.transfer.targets import Target  # noqa: E402

N_BASE = 400  # base frames: pool[:N_BASE]; the rest of the pool are the dipole frames
DIPOLE = Target("dipole", "dipole")
VARIANTS = ("frozen", "finetuned", "scratch")
CONTROLS = ("untrained_frozen", "rigid_charges")

SETTINGS = {
    "label_counts": [10, 25, 50, 100, 200],
    "scratch_extra_label_counts": [400],
    # The base model: tridft's training defaults (32 features, 3 layers, latent 16 + 8)
    # for a fixed wall-time budget on two shared cores.
    "base": {"training": {"time_limit_minutes": 5.0, "max_steps": 100000, "batch_size": 16,
                          "validate_every": 100, "checkpoint_every": 100000,
                          "log_every": 100, "gradient_cosine_every": None, "num_threads": 1,
                          "seed": 0}},
    # Every method stops early on its held-out labels (patience in validations, one per
    # epoch but at least 10 steps apart). A step of the head alone on cached latents
    # costs a fraction of a step through the backbone, so the frozen head gets 5x the
    # steps at a similar wall time (with 600 it was still improving at 200 labels).
    "finetune": {"lr": 3e-3, "batch_size": 16, "validation_fraction": 0.2,
                 "pretrained_lr_factor": 0.1,
                 "steps": {"frozen": 3000, "finetuned": 600, "scratch": 600,
                           "untrained_frozen": 3000},
                 "patience": {"frozen": 30, "finetuned": 15, "scratch": 15,
                              "untrained_frozen": 30}},
}
QUICK_SETTINGS = {
    "label_counts": [6, 10],
    "scratch_extra_label_counts": [16],
    "base": common.merge(common.QUICK_SETTINGS, {"training": {"seed": 0}}),
    "finetune": {"lr": 3e-3, "batch_size": 4, "validation_fraction": 0.2,
                 "pretrained_lr_factor": 0.1,
                 "steps": {"frozen": 10, "finetuned": 6, "scratch": 6, "untrained_frozen": 10},
                 "patience": {"frozen": 15, "finetuned": 15, "scratch": 15,
                              "untrained_frozen": 15}},
}
QUICK_BASE = 8  # --quick: pool[:8] base frames, pool[8:24] dipole frames

SUMMARY_METRICS = ("dipole_mae", "dipole_rmse", "validation_mae", "time_s")


class TransferResults(common.ResultsFile):
    """The shared results schema, with a dipole summary and the verdict on the claim."""

    def write(self) -> None:
        summary = summarize(self.runs)
        write_json_atomic(self.path, {
            "benchmark": self.benchmark, "quick": self.quick, "complete": self.complete,
            "command": self.command, "settings": self.settings, **common.environment(),
            "runs": self.runs, "summary": summary, "claim": verdict(summary)})


def main(argv=None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None,
                        help="learning-curve PNG (default docs/figures/transfer.png; "
                             "--quick: next to the results)")
    args = parser.parse_args(argv)
    common.setup_logging()
    # Every fine-tuned and scratch model warns that its old heads change: known here.
    logging.getLogger("tridft.transfer.finetune").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    seeds = args.seeds or (1 if args.quick else 2)
    data = common.load_benchmark_data(args.quick)
    n_base = QUICK_BASE if args.quick else N_BASE
    base_frames, dipole_frames = data.pool[:n_base], data.pool[n_base:]
    output = common.output_path(args, "transfer")
    plot_path = args.plot or (output.with_suffix(".png") if args.quick
                              else common.FIGURES / "transfer.png")
    results = TransferResults.open(
        output, "transfer", "benchmarks/transfer.py" + (" --quick" if args.quick else ""),
        {**settings, "seeds": seeds, "n_base_frames": len(base_frames),
         "n_dipole_frames": len(dipole_frames), "n_validation": len(data.validation),
         "n_test": len(data.test), "metric": "MAE over dipole components on the test "
                                             "structures, e*Angstrom"},
        args.quick, resume=not args.fresh)

    keep = args.keep_runs or Path(common.ROOT / "runs" / ("transfer-quick" if args.quick
                                                          else "transfer"))
    base_path = train_base_model(base_frames, data, settings["base"], keep / "base", results)
    test_set = GraphDataset(data.test, load_model(base_path).cutoff)

    grid = [{"variant": variant, "n_train": n, "seed": seed}
            for seed in range(seeds) for n in settings["label_counts"]
            for variant in VARIANTS + CONTROLS]
    grid += [{"variant": "scratch", "n_train": n, "seed": seed}
             for seed in range(seeds) for n in settings["scratch_extra_label_counts"]]

    def run_one(point: dict, workdir: Path) -> dict:
        labels = label_set(dipole_frames, base_frames, point["n_train"], point["seed"])
        if point["variant"] == "rigid_charges":
            return rigid_charges(labels, data.test)
        return fit_dipoles(point["variant"], labels, base_path, test_set,
                           settings["finetune"], point["seed"])

    common.run_grid(results, grid, run_one)
    reference = constant_predictor_mae(dipole_frames, data.test)
    results.settings["constant_mean_predictor_mae"] = reference
    results.finish()
    summary = summarize(results.runs)
    plot(summary, reference, plot_path)
    print(markdown_table(summary, reference))
    print(f"\nclaim: {verdict(summary)['statement']}")
    print(f"results: {output}\nplot: {plot_path}")
    return 0


# ---- the pieces ---------------------------------------------------------------------------


def without_dipoles(records: list[Record]) -> list[Record]:
    return [replace(r, dipole=None) for r in records]


def only_dipoles(records: list[Record]) -> list[Record]:
    return [replace(r, energy=None, forces=None, polarizability=None) for r in records]


def train_base_model(base_frames: list[Record], data: common.Benchmark, settings: dict,
                     workdir: Path, results: TransferResults) -> Path:
    """Train the base model on energies, forces and polarizabilities (never dipoles), once.

    A base model in ``workdir`` made with the same settings is reused (with the runs
    already in the results file); a new one invalidates those runs.
    """
    model_path, record_path = workdir / "run" / "model.pt", workdir / "base_model.json"
    if model_path.is_file() and record_path.is_file():
        import json

        recorded = json.loads(record_path.read_text())
        if recorded.get("settings") == settings:
            common.logger.info("reusing the base model %s", model_path)
            results.settings["base_model"] = recorded
            return model_path
    workdir.mkdir(parents=True, exist_ok=True)
    train_file, validation_file = workdir / "base.extxyz", workdir / "validation.extxyz"
    common.write_extxyz(without_dipoles(base_frames), train_file)
    common.write_extxyz(without_dipoles(data.validation), validation_file)
    config = config_from_dict(common.merge(settings, {
        "data": {"train": str(train_file), "validation": str(validation_file),
                 "split": {"validation": 0, "test": 0}},
        "loss": {"weights": {"energy": 1.0, "forces": 1.0, "polarizability": 1.0}},
        "run_dir": str(workdir / "run")}))
    common.logger.info("training the base model on %d structures", len(base_frames))
    result = train(config, progress=False)
    recorded = {
        "settings": settings, "model": config.model.model_dump(), "steps": result.steps,
        "train_time_s": result.elapsed_s, "stopped_because": result.stopped_because,
        "n_train": len(base_frames),
        "validation": {k: v for k, v in result.metrics.items()
                       if k in ("energy_mae", "forces_mae", "polarizability_mae")}}
    write_json_atomic(record_path, recorded)
    results.settings["base_model"] = recorded
    results.runs = []  # runs made on another base model are not comparable
    results.write()
    return result.best_model_path


def label_set(dipole_frames: list[Record], base_frames: list[Record], n: int,
              seed: int) -> list[Record]:
    """The first n of this seed's shuffled dipole frames (then base frames), dipoles only."""
    rng = np.random.default_rng(seed)
    order = [dipole_frames[i] for i in rng.permutation(len(dipole_frames))]
    if n > len(order):  # only the scratch model may use base frames' dipoles
        order += [base_frames[i] for i in rng.permutation(len(base_frames))]
    if n > len(order):
        raise ValueError(f"{n} labels asked for, {len(order)} frames available")
    return only_dipoles(order[:n])


def fit_new_head(variant: str, target: Target, labels: list[Record], base_path: Path,
                 settings: dict, seed: int):
    """Learn ``target`` from ``labels`` as ``variant`` does; (model, FinetuneResult, seconds).

    frozen:           a new head on the base model's frozen latent
    finetuned:        the same, backbone and bottleneck at lr * pretrained_lr_factor
    scratch:          the base model's architecture from random weights, all trained
    untrained_frozen: a new head on the frozen latent of that random model
    """
    torch.manual_seed(seed)  # the new head's (and the scratch model's) initial weights
    base = load_model(base_path)
    if variant in ("scratch", "untrained_frozen"):
        model = build_model(base.config, GraphDataset(labels, base.cutoff).stats())
        freeze, lr_factor = ("none", 1.0) if variant == "scratch" else ("latent", 1.0)
    else:
        model = base
        freeze = "latent" if variant == "frozen" else "none"
        lr_factor = settings["pretrained_lr_factor"]
    options = FinetuneOptions(property=target.name, kind=target.kind, freeze=freeze,
                              steps=settings["steps"][variant], lr=settings["lr"],
                              pretrained_lr_factor=lr_factor,
                              batch_size=settings["batch_size"],
                              validation_fraction=settings["validation_fraction"],
                              patience=settings["patience"][variant], seed=seed)
    started = time.perf_counter()
    result = finetune(model, labels, options, progress=False)
    return model, result, time.perf_counter() - started


def fit_dipoles(variant: str, labels: list[Record], base_path: Path, test_set: GraphDataset,
                settings: dict, seed: int) -> dict:
    """Train one dipole model; its test and validation errors and time."""
    model, result, elapsed = fit_new_head(variant, DIPOLE, labels, base_path, settings, seed)
    test = evaluate_target(model, DIPOLE, test_set)
    common.logger.info("%s, %d labels, seed %d: test MAE %.4f e*A (%.0f s)", variant,
                       len(labels), seed, test["mae"], elapsed)
    return {"dipole_mae": test["mae"], "dipole_rmse": test["rmse"],
            "validation_mae": result.validation["mae"], "n_fit": result.n_train,
            "n_early_stopping": result.n_validation, "steps": result.steps,
            "best_step": result.best_step, "time_s": elapsed}


def rigid_charges(labels: list[Record], test: list[Record]) -> dict:
    """Fixed charges per atom index, mu = sum_i q_i (r_i - centroid) with sum_i q_i = 0,
    fitted to the labels by least squares; test errors as for the models."""
    reference = labels[0].numbers
    if any(len(r.numbers) != len(reference) or np.any(r.numbers != reference)
           for r in labels + test):
        raise ValueError("rigid charges need the same atoms in the same order everywhere")

    def design(records: list[Record]) -> np.ndarray:
        """(3 S, n - 1): the last charge is minus the sum of the others (neutrality)."""
        rows = []
        for record in records:
            centred = record.positions - record.positions.mean(axis=0)  # (n, 3) Angstrom
            rows.append((centred[:-1] - centred[-1]).T)
        return np.concatenate(rows)

    started = time.perf_counter()
    charges, *_ = np.linalg.lstsq(design(labels), np.concatenate([r.dipole for r in labels]),
                                  rcond=None)
    errors = design(test) @ charges - np.concatenate([r.dipole for r in test])
    return {"dipole_mae": float(np.abs(errors).mean()),
            "dipole_rmse": float(np.sqrt(np.mean(errors**2))),
            "time_s": time.perf_counter() - started}


def constant_predictor_mae(dipole_frames: list[Record], test: list[Record]) -> float:
    """Test MAE of always predicting the mean dipole of the dipole frames (a floor to beat)."""
    mean = np.mean([r.dipole for r in dipole_frames], axis=0)
    return float(np.mean([np.abs(r.dipole - mean) for r in test]))


# ---- summary, verdict, table, plot ----------------------------------------------------------


def summarize(runs: list[dict]) -> list[dict]:
    """Mean, std, min and max over seeds per (variant, n_train)."""
    return common.summarize(runs, SUMMARY_METRICS, keys=("variant", "n_train"), extremes=True,
                            order=lambda row: ((VARIANTS + CONTROLS).index(row["variant"]),
                                               row["n_train"]))


def verdict(summary: list[dict], at: int = 50) -> dict:
    """Does frozen@50 match what scratch needs several hundred (>= 200) labels for?

    scratch_labels_to_match: the fewest labels with which the scratch model's mean test
    MAE is at most the frozen head's mean MAE at ``at`` labels (None: not within the
    label counts run).
    """
    mean = {(row["variant"], row["n_train"]): row.get("dipole_mae_mean") for row in summary}
    frozen = mean.get(("frozen", at))
    if frozen is None:
        return {"frozen_labels": at, "frozen_mae": None, "scratch_labels_to_match": None,
                "holds": None, "statement": "not measured"}
    scratch = sorted((n, value) for (variant, n), value in mean.items()
                     if variant == "scratch" and value is not None)
    match = next((n for n, value in scratch if value <= frozen), None)
    largest = scratch[-1][0] if scratch else None
    holds = match is None or match >= 200
    if match is None:
        statement = (f"holds: the frozen head's MAE with {at} labels ({frozen:.4f} e*A) is not "
                     f"reached from scratch with up to {largest} labels")
    else:
        statement = (f"{'holds' if holds else 'does not hold'}: the scratch model matches the "
                     f"frozen head's MAE with {at} labels ({frozen:.4f} e*A) with {match} labels")
    return {"frozen_labels": at, "frozen_mae": frozen, "scratch_labels_to_match": match,
            "holds": holds, "statement": statement}


def markdown_table(summary: list[dict], reference: float) -> str:
    """Test MAE (mean +- std over seeds, e*Angstrom) per label count and method."""
    counts = sorted({row["n_train"] for row in summary})
    cell = {(row["variant"], row["n_train"]): row for row in summary}
    columns = VARIANTS + CONTROLS
    lines = ["| labels | " + " | ".join(columns) + " |", "|---:|" + "---:|" * len(columns)]
    for n in counts:
        values = []
        for variant in columns:
            row = cell.get((variant, n))
            values.append("-" if row is None else
                          f"{row['dipole_mae_mean']:.4f} ± {row['dipole_mae_std']:.4f}")
        lines.append(f"| {n} | " + " | ".join(values) + " |")
    lines.append(f"\nconstant (mean dipole) predictor: {reference:.4f} e*A")
    return "\n".join(lines)


def plot(summary: list[dict], reference: float, path: Path) -> None:
    """Test MAE against the number of labels, log-log, one line per method (min-max band)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator, ScalarFormatter

    figure = Figure(figsize=(6, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    labels = {"frozen": "(a) head on frozen latent", "finetuned": "(b) fine-tuned, unfrozen",
              "scratch": "(c) from scratch", "untrained_frozen": "head on untrained latent",
              "rigid_charges": "rigid point charges"}
    for variant in VARIANTS + CONTROLS:
        rows = [row for row in summary if row["variant"] == variant]
        if not rows:
            continue
        n = [row["n_train"] for row in rows]
        style = "o-" if variant in VARIANTS else "s:"
        axes.plot(n, [row["dipole_mae_mean"] for row in rows], style, label=labels[variant])
        axes.fill_between(n, [row["dipole_mae_min"] for row in rows],
                          [row["dipole_mae_max"] for row in rows], alpha=0.2)
    if math.isfinite(reference):
        axes.axhline(reference, color="grey", ls="--", lw=0.8, label="constant mean dipole")
    axes.set_xscale("log")
    axes.set_yscale("log")
    counts = sorted({row["n_train"] for row in summary})
    axes.set_xticks(counts, [str(n) for n in counts])
    axes.xaxis.set_minor_locator(NullLocator())
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(ScalarFormatter())
    axes.set_xlabel("dipole labels (training + early-stopping)")
    axes.set_ylabel("test MAE of dipole components (e Å)")
    axes.set_title("ethanol dipoles from few labels")
    axes.legend(fontsize=8)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
