"""A benchmark's JSON results file, its summary over seeds, and the grid of runs behind it.

Every run is appended to the file as soon as it finishes, so that an interrupted
benchmark keeps every finished run and, started again, skips them.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from provenance import code_state, environment
from tridft.files import write_json_atomic

logger = logging.getLogger("benchmarks")

SUMMARY_METRICS = ("energy_mae", "energy_mae_per_atom", "forces_mae", "polarizability_mae",
                   "polarizability_iso_mae", "jacobian_consistency_mae",
                   "jacobian_consistency_max", "train_time_s", "train_cpu_s")
# Keys that name a point of a benchmark grid (everything else in a run is a result).
PARAMETER_KEYS = ("variant", "n_train", "polarizability_fraction", "noise_forces",
                  "model", "jacobian")


def summarize(runs: list[dict], metrics: Sequence[str] = SUMMARY_METRICS,
              keys: Sequence[str] = PARAMETER_KEYS,
              order: Callable[[dict], object] | None = None,
              extremes: bool = False) -> list[dict]:
    """Mean and sample standard deviation over seeds of each group of runs.

    Runs are grouped by the ``keys`` they have (the variant and its parameters, e.g.
    n_train or noise level), in first-seen order or sorted by ``order(row)``. Per
    metric: ``<metric>_mean``, ``_std``, ``_n`` (the runs that report it: older runs
    may not) and with ``extremes`` ``_min`` and ``_max``.
    """
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = tuple((k, run.get(k)) for k in keys if k in run)
        groups.setdefault(key, []).append(run)
    summary = []
    for key, members in groups.items():
        row = dict(key)
        row["n_seeds"] = len(members)
        for metric in metrics:
            values = [m[metric] for m in members if isinstance(m.get(metric), (int, float))]
            if values:
                row[f"{metric}_mean"] = float(np.mean(values))
                row[f"{metric}_std"] = float(statistics.stdev(values)) if len(values) > 1 else 0.0
                row[f"{metric}_n"] = len(values)
                if extremes:
                    row[f"{metric}_min"], row[f"{metric}_max"] = (float(min(values)),
                                                                  float(max(values)))
        summary.append(row)
    return summary if order is None else sorted(summary, key=order)


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
        results.add({**point, **metrics, "source_sha256": code_state()["source_sha256"]})
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


def reusable_run(path: Path, match: dict, settings_base: dict) -> dict | None:
    """The metrics of a run already in another results file, or None.

    Used where two benchmarks share a grid point (the full model on all 650
    structures is the ablations' "full" run): the run is taken over only when that
    file was made with the same base settings, so it is the same computation.
    """
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
