"""Errors of a finished run on the structures it trained on against those it never saw.

    .venv/bin/python benchmarks/generalisation_gap.py runs/demo [more runs] \
        --out docs/results/generalisation_gap.json

For each run folder (model.pt, split.json, config.yaml): the MAE of every trained property
on its training, validation and test structures (forces from the direct head and from
-dE/dR), and how the per-structure -dE/dR error of the test structures is spread: its
percentiles and its correlation with the structure's energy above the lowest labelled
energy. A training error far below the test error means the run memorised its training
structures; a test error that grows with the energy means the structures the run misses
are the rare high-energy ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from tridft.data.dataset import GraphDataset
from tridft.errors import TriDFTError
from tridft.files import write_json_atomic
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES, POLARIZABILITY
from tridft.model.persistence import load_model
from tridft.train.config import load_config
from tridft.train.run_data import load_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import code_state, environment  # noqa: E402

CHUNK = 40  # structures per evaluation batch


def per_structure_errors(model, dataset: GraphDataset) -> dict[str, np.ndarray]:
    """Per structure: |dE| (meV), mean |dF| per component of both force estimates
    (meV/A), mean |d alpha| per component (1e-3 A^3); NaN where a label is missing."""
    columns: dict[str, list[float]] = {"energy": [], "direct_forces": [],
                                       "conservative_forces": [], "polarizability": []}
    for first in range(0, len(dataset), CHUNK):
        indices = list(range(first, min(first + CHUNK, len(dataset))))
        batch = dataset.collate(indices, dtype=torch.float32)
        outputs = model(batch, forces="both")
        atoms = batch.structure_index
        for name, key in (("direct_forces", FORCES), ("conservative_forces",
                                                       CONSERVATIVE_FORCES)):
            error = (outputs[key].detach() - batch.forces).abs().mean(-1)  # (N,) eV/A
            sums = torch.zeros(len(indices), dtype=error.dtype).index_add_(0, atoms, error)
            per = 1000 * sums / batch.n_atoms.to(error.dtype)
            labelled = torch.zeros(len(indices), dtype=torch.long).index_add_(
                0, atoms, batch.forces_mask.long()) > 0
            per[~labelled] = float("nan")
            columns[name] += per.tolist()
        energy = 1000 * (outputs[ENERGY].detach() - batch.energy).abs()
        columns["energy"] += torch.where(batch.energy_mask, energy, float("nan")).tolist()
        if POLARIZABILITY in outputs:
            alpha = 1000 * (outputs[POLARIZABILITY].detach()
                            - batch.polarizability).abs().mean(dim=(1, 2))
            columns["polarizability"] += torch.where(batch.polarizability_mask, alpha,
                                                     float("nan")).tolist()
        else:
            columns["polarizability"] += [float("nan")] * len(indices)
    return {name: np.asarray(values) for name, values in columns.items()}


def summary(errors: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Mean over structures with the label (per-structure means of equal-size molecules,
    so the force figures are the usual per-component MAEs)."""
    return {name: (float(np.nanmean(values)) if np.isfinite(values).any() else None)
            for name, values in errors.items()}


def measure(run: Path) -> dict:
    model = load_model(run / "model.pt").eval()
    data = load_data(load_config(run / "config.yaml"), run, resume=True)
    parts = {"train": data.train.records, "validation": data.validation, "test": data.test}
    result: dict = {"run": str(run)}
    errors = {name: per_structure_errors(model, GraphDataset(records, model.cutoff))
              for name, records in parts.items() if records}
    result.update({name: summary(part) for name, part in errors.items()})
    if "test" not in errors:
        return result
    energies = np.array([r.energy if r.energy is not None else np.nan
                         for r in data.train.records + data.test])
    lowest = np.nanmin(energies)
    above = np.array([r.energy - lowest if r.energy is not None else np.nan
                      for r in data.test])  # eV
    forces = errors["test"]["conservative_forces"]
    usable = np.isfinite(forces) & np.isfinite(above)
    if usable.sum() > 2:
        worst = np.argsort(forces[usable])[::-1][:5]
        result["test_spread"] = {
            "conservative_forces_percentiles_10_50_90_99": np.percentile(
                forces[usable], [10, 50, 90, 99]).round(2).tolist(),
            "correlation_with_energy_above_lowest": float(np.corrcoef(forces[usable],
                                                                      above[usable])[0, 1]),
            "worst_five_errors": forces[usable][worst].round(2).tolist(),
            "worst_five_energy_above_lowest_eV": above[usable][worst].round(3).tolist(),
            "test_energy_above_lowest_percentiles_5_50_95_eV": np.percentile(
                above[usable], [5, 50, 95]).round(3).tolist(),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for run in args.runs:
        try:
            result = measure(Path(run))
        except TriDFTError as error:  # a missing or unreadable run: one line, no traceback
            print(f"error: {error}", file=sys.stderr)
            return 1
        results.append(result)
        print(run)
        for part in ("train", "validation", "test"):
            if part in result:
                row = "  ".join(f"{k} {v:.2f}" for k, v in result[part].items()
                                if v is not None)
                print(f"  {part:10s} {row}")
        if "test_spread" in result:
            print(f"  test -dE/dR spread: {result['test_spread']}")
    if args.out:
        write_json_atomic(args.out, {"units": "meV, meV/A, 1e-3 A^3", "runs": results,
                                     "environment": environment(), "code": code_state()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
