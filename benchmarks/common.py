"""What every benchmark shares: the fixed ethanol split, one training run, the results file.

A benchmark is a grid of training runs. Each run

1. writes its training, validation and test structures to extxyz files (the
   training labels possibly changed: noise added, labels dropped),
2. trains with tridft's own trainer (``tridft.train.loop.train``) under a
   configuration that differs from the benchmark's base settings only by the
   run's overrides,
3. evaluates the best (validation-selected) model on the CLEAN test structures,

and is appended to a JSON results file as soon as it finishes, so that an
interrupted benchmark keeps every finished run and, started again, skips them.

The split: the bundled 800 ethanol structures, 100 for test and 50 for
validation drawn first with seed 0 (tridft.data.splits.make_splits), the other
650 form the training pool; a learning-curve point with n training structures
takes the first n of the pool (nested sets: same validation and test).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import ase
import ase.io
import numpy as np
import torch

import tridft
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.record import Record
from tridft.data.splits import Splits, make_splits
from tridft.files import write_json_atomic
from tridft.train.config import config_from_dict
from tridft.train.loop import train

logger = logging.getLogger("benchmarks")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
FIGURES = ROOT / "docs" / "figures"

N_TEST = 100
N_VALIDATION = 50
N_POOL = 650  # 800 - 100 test - 50 validation
SPLIT_SEED = 0

# The base of every benchmark run: tridft's training defaults (TRAINING_MODEL_DEFAULTS:
# 32 features, 3 layers, latent 16 scalars + 8 vectors) with a fixed number of steps,
# so that the variants of a grid do the same amount of optimisation and their train
# time is a result. 500 steps of 16 structures (~12 epochs of 650) is short: chosen so
# that ~50 runs fit in about an hour on two shared cores (60-100 s per run); the
# models are far from converged, and every comparison is at this equal budget.
BASE_SETTINGS: dict = {
    "training": {"max_steps": 500, "batch_size": 16, "validate_every": 50,
                 "checkpoint_every": 100000, "log_every": 100,
                 "gradient_cosine_every": None, "num_threads": 1},
}
# --quick: a few steps on a few structures, the same code paths and JSON schema.
QUICK_SETTINGS: dict = {
    "model": {"features": 8, "layers": 1, "head_hidden": 8, "latent_scalars": 4,
              "latent_vectors": 2, "polarizability_channels": 2},
    "training": {"max_steps": 6, "batch_size": 4, "validate_every": 3, "warmup_steps": 1,
                 "checkpoint_every": 100000, "log_every": 3, "gradient_cosine_every": None,
                 "num_threads": 1},
    "loss": {"kl_warmup_steps": 1},
}
QUICK_SIZES = {"pool": 24, "validation": 8, "test": 8}

TASKS = ("energy", "forces", "polarizability")


# ---- data -------------------------------------------------------------------------------------


@dataclass
class Benchmark:
    """The structures of a benchmark: a training pool, validation and test (clean labels)."""

    pool: list[Record]
    validation: list[Record]
    test: list[Record]
    splits: Splits
    quick: bool


def load_benchmark_data(quick: bool = False) -> Benchmark:
    records = read_structures(bundled_dataset_path())
    splits = make_splits(len(records), (N_POOL, N_VALIDATION, N_TEST), seed=SPLIT_SEED)
    pool = [records[i] for i in splits.train]
    validation = [records[i] for i in splits.validation]
    test = [records[i] for i in splits.test]
    if quick:
        pool = pool[:QUICK_SIZES["pool"]]
        validation = validation[:QUICK_SIZES["validation"]]
        test = test[:QUICK_SIZES["test"]]
    return Benchmark(pool, validation, test, splits, quick)


def write_extxyz(records: Sequence[Record], path: Path) -> None:
    """Records (internal units) -> extxyz that tridft reads back unchanged.

    A label that is None is simply absent from that frame.
    """
    frames = []
    for record in records:
        atoms = ase.Atoms(numbers=record.numbers, positions=record.positions,
                          cell=record.cell if record.cell is not None else np.zeros((3, 3)),
                          pbc=record.pbc)
        if record.energy is not None:
            atoms.info["energy"] = float(record.energy)
        if record.polarizability is not None:
            atoms.info["polarizability"] = np.asarray(record.polarizability, float).ravel()
        if record.dipole is not None:
            atoms.info["dipole"] = np.asarray(record.dipole, float)
        if record.forces is not None:
            atoms.arrays["forces"] = np.asarray(record.forces, float)
        frames.append(atoms)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".extxyz", delete=False) as handle:
        temporary = handle.name
    ase.io.write(temporary, frames, format="extxyz")
    os.replace(temporary, path)


def copy_records(records: Sequence[Record]) -> list[Record]:
    return [copy.deepcopy(record) for record in records]


# ---- one training run --------------------------------------------------------------------------


def merge(base: dict, overrides: dict) -> dict:
    """Nested dict merge: ``overrides`` wins; dicts are merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def train_and_test(train_records: Sequence[Record], data: Benchmark, overrides: dict,
                   seed: int, workdir: Path) -> dict:
    """Train on ``train_records`` with the benchmark settings + ``overrides``; test metrics.

    Returns the test metrics of tridft.train.evaluate (energy_mae eV, forces_mae eV/A,
    polarizability_mae A^3, jacobian_consistency_mae eV/A, ...) plus train_time_s
    (the trainer's wall time), train_cpu_s (CPU time of training and testing), steps,
    epochs and n_train.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    files = {name: workdir / f"{name}.extxyz" for name in ("train", "validation", "test")}
    write_extxyz(train_records, files["train"])
    write_extxyz(data.validation, files["validation"])
    write_extxyz(data.test, files["test"])
    settings = merge(QUICK_SETTINGS if data.quick else BASE_SETTINGS, overrides)
    settings = merge(settings, {
        "data": {"train": str(files["train"]), "validation": str(files["validation"]),
                 "test": str(files["test"])},
        "training": {"seed": seed},
        "run_dir": str(workdir / "run"),
    })
    config = config_from_dict(settings)
    # CPU seconds of this process (one torch thread): unlike the wall time, hardly
    # changed by other processes competing for the shared cores.
    cpu_started = time.process_time()
    result = train(config, progress=False)
    train_cpu_s = time.process_time() - cpu_started
    metrics = {key: value for key, value in result.test_metrics.items()
               if isinstance(value, (int, float))}
    return {**metrics, "train_time_s": result.elapsed_s, "train_cpu_s": train_cpu_s,
            "steps": result.steps,
            "epochs": result.epochs, "n_train": len(train_records),
            "stopped_because": result.stopped_because}


# ---- results files -----------------------------------------------------------------------------


def environment() -> dict:
    """The machine and the versions, for every results file."""
    import importlib.metadata as metadata

    versions = {"tridft": tridft.__version__, "torch": torch.__version__,
                "numpy": np.__version__, "ase": ase.__version__}
    for name in ("vesin", "pydantic"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"code": _code_state(),
            "machine": {"cpu_count": os.cpu_count(), "processor": _cpu_model(),
                        "platform": platform.platform(), "python": platform.python_version(),
                        "note": "2 cores shared with other processes; CPU only"},
            "versions": versions}


def _code_state() -> dict:
    """The commit the benchmark ran on, and whether the training code differed from it."""
    import hashlib
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "tridft").rglob("*.py")):
        digest.update(path.read_bytes())
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_source_changes": bool(git("status", "--porcelain", "--", "src")),
            "source_sha256": digest.hexdigest()[:16]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@dataclass
class ResultsFile:
    """A benchmark's JSON results, rewritten atomically after every run.

    Schema (shared by every benchmark)::

        {"benchmark": str, "quick": bool, "complete": bool, "command": str,
         "settings": {...}, "machine": {...}, "versions": {...},
         "runs": [{"variant": str, "seed": int, <parameters>, <metrics>}, ...],
         "summary": [{"variant": str, <parameters>, "n_seeds": int,
                      "<metric>_mean": float, "<metric>_std": float, ...}, ...]}
    """

    path: Path
    benchmark: str
    command: str
    settings: dict
    quick: bool
    runs: list[dict] = field(default_factory=list)
    complete: bool = False

    @classmethod
    def open(cls, path: Path, benchmark: str, command: str, settings: dict, quick: bool,
             resume: bool = True) -> "ResultsFile":
        results = cls(path, benchmark, command, settings, quick)
        if resume and path.is_file():
            import json

            previous = json.loads(path.read_text())
            # Runs made with the same base settings are the same computation: keep them
            # (a grid that grew a variant only runs the new points).
            same_base = previous.get("settings", {}).get("base") == settings.get("base")
            if same_base and previous.get("quick") == quick:
                results.runs = previous.get("runs", [])
        return results

    def has(self, key: dict) -> bool:
        return any(all(run.get(k) == v for k, v in key.items()) for run in self.runs)

    def add(self, run: dict) -> None:
        self.runs.append(run)
        self.write()

    def finish(self) -> None:
        self.complete = True
        self.write()

    def write(self) -> None:
        write_json_atomic(self.path, {
            "benchmark": self.benchmark, "quick": self.quick, "complete": self.complete,
            "command": self.command, "settings": self.settings, **environment(),
            "runs": self.runs, "summary": summarize(self.runs)})


SUMMARY_METRICS = ("energy_mae", "energy_mae_per_atom", "forces_mae", "polarizability_mae",
                   "polarizability_iso_mae", "jacobian_consistency_mae",
                   "jacobian_consistency_max", "train_time_s", "train_cpu_s")


def summarize(runs: list[dict]) -> list[dict]:
    """Mean and sample standard deviation over seeds of each group of runs.

    Runs are grouped by every key that is neither a metric nor the seed (the
    variant and its parameters, e.g. n_train or noise level), in first-seen order.
    """
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = tuple((k, run.get(k)) for k in PARAMETER_KEYS if k in run)
        groups.setdefault(key, []).append(run)
    summary = []
    for key, members in groups.items():
        row = dict(key)
        row["n_seeds"] = len(members)
        for metric in SUMMARY_METRICS:
            values = [m[metric] for m in members if isinstance(m.get(metric), (int, float))]
            if values:
                row[f"{metric}_mean"] = float(np.mean(values))
                row[f"{metric}_std"] = float(statistics.stdev(values)) if len(values) > 1 else 0.0
                row[f"{metric}_n"] = len(values)  # runs that report it (older runs may not)
        summary.append(row)
    return summary


# Keys that name a point of a benchmark grid (everything else in a run is a result).
PARAMETER_KEYS = ("variant", "n_train", "polarizability_fraction", "noise_forces",
                  "model", "jacobian")


def run_grid(results: ResultsFile, grid: Sequence[dict],
             run_one: Callable[[dict, Path], dict], keep_runs: Path | None = None) -> None:
    """Run every point of ``grid`` not already in ``results``; append each as it finishes.

    A point is a dict of parameters (variant, seed, ...); ``run_one(point, workdir)``
    returns its metrics. Work directories are temporary unless ``keep_runs`` is given.
    """
    for index, point in enumerate(grid):
        if results.has(point):
            logger.info("[%d/%d] %s: already done", index + 1, len(grid), point)
            continue
        started = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="tridft-bench-"))
        workdir = (keep_runs / _slug(point)) if keep_runs else scratch
        try:
            metrics = run_one(point, workdir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # Others may change the source while a grid runs: each run names the code it used.
        results.add({**point, **metrics, "source_sha256": _code_state()["source_sha256"]})
        logger.info("[%d/%d] %s: %s (%.0f s)", index + 1, len(grid), point, _short(metrics),
                    time.perf_counter() - started)
    results.finish()


def _slug(point: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in point.items()).replace("/", "_")


def _short(metrics: dict) -> str:
    parts = []
    for key, scale, unit in (("energy_mae", 1e3, "meV"), ("forces_mae", 1e3, "meV/A"),
                             ("polarizability_mae", 1e3, "mA^3"),
                             ("jacobian_consistency_mae", 1e3, "meV/A")):
        if key in metrics:
            parts.append(f"{key.split('_')[0]} {metrics[key] * scale:.1f} {unit}")
    return ", ".join(parts)


# ---- command line -------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (seconds) with the same output schema")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default docs/results/<benchmark>.json; "
                             "--quick: a temporary folder)")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore runs already in the results file")
    parser.add_argument("--keep-runs", type=Path, default=None,
                        help="keep every run directory under this folder")
    return parser


def output_path(args, benchmark: str) -> Path:
    if args.out is not None:
        return args.out
    if args.quick:
        return Path(tempfile.gettempdir()) / f"tridft-{benchmark}-quick.json"
    return RESULTS / f"{benchmark}.json"


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("tridft").setLevel(logging.WARNING)


def reusable_run(path: Path, match: dict, settings_base: dict) -> dict | None:
    """The metrics of a run already in another results file, or None.

    Used where two benchmarks share a grid point (the full model on all 650
    structures is the ablations' "full" run): the run is taken over only when that
    file was made with the same base settings, so it is the same computation.
    """
    import json

    if not path.is_file():
        return None
    previous = json.loads(path.read_text())
    if previous.get("settings", {}).get("base") != settings_base:
        return None
    for run in previous.get("runs", []):
        if all(run.get(k) == v for k, v in match.items()):
            metrics = {k: v for k, v in run.items() if k not in ("variant", "seed")}
            return {**metrics, "reused_from": f"{path.name} {match}"}
    return None
