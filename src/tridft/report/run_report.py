"""The report of a training run: its best model on the test split.

    report = write_run_report("runs/demo")
    report.metrics["forces_mae"]     # eV/Angstrom, test split

writes, into the run folder:

    metrics.json     the test metrics (as ``tridft evaluate --json``)
    test.extxyz      the test structures, as they are in the training file (extxyz data)
    plots/           parity plots, error histograms, learning curves, gradient cosines
    report.md        the metric table with the plots linked
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tridft.data.record import Record
from tridft.errors import InputError, TriDFTError
from tridft.files import atomic_output, write_json_atomic

MODEL_NAME = "model.pt"


@dataclass
class RunReport:
    """What ``write_run_report`` measured and wrote (paths inside the run folder)."""

    metrics: dict
    metrics_path: Path
    report_path: Path
    test_file: Path | None
    plots: dict[str, Path] = field(default_factory=dict)


@dataclass
class RunSplit:
    """Where the structures of one split of a run are.

    source:   the file they come from
    indices:  their positions in ``source`` (None: the split is all of ``source``)
    n:        how many structures of ``source`` the run used (None: all)
    """

    source: Path
    indices: list[int] | None
    n: int | None
    keys: object
    units: object

    def read(self, copy_to: Path | None = None) -> tuple[list[Record], Path | None]:
        """(the split's records, the extxyz copy written or None).

        An extxyz source is read once: the split's frames are copied as they are (same
        keys and units) to ``copy_to``, which is then read with the run's keys and units.
        """
        from tridft.data.io import read_structures

        if self.indices is None:
            return read_structures(self.source, self.keys, self.units), None
        if copy_to is not None and self.source.suffix.lower() in (".xyz", ".extxyz"):
            copy_structures(self.source, self.indices, copy_to, self.n)
            return read_structures(copy_to, self.keys, self.units), copy_to
        records = read_structures(self.source, self.keys, self.units)[:self.n]
        return [records[i] for i in self.indices], None


def run_split(run_dir: str | os.PathLike, metadata: dict, which: str = "test") -> RunSplit:
    """The split ``which`` of a run, from its split.json (or the model's metadata) and the
    data section of its configuration (file, keys, units, max_structures)."""
    from tridft.data.io import bundled_dataset_path
    from tridft.data.options import keys_from_mapping, units_from_mapping
    from tridft.data.splits import Splits

    sources = metadata.get("data", {}) or {}
    data_config = (metadata.get("config", {}) or {}).get("data", {}) or {}
    keys = keys_from_mapping(data_config.get("keys") or {}, "data.keys")
    units = units_from_mapping(data_config.get("units") or {}, "data.units")
    if sources.get(which):  # the split was a file of its own
        return RunSplit(Path(sources[which]), None, None, keys, units)
    source = Path(sources["train"]) if sources.get("train") else bundled_dataset_path()
    split_file = Path(run_dir) / "split.json"
    splits = Splits.load(split_file) if split_file.is_file() \
        else Splits.from_dict(metadata.get("split", {}), path=f"{run_dir}/{MODEL_NAME}")
    return RunSplit(source, list(getattr(splits, which)), splits.n, keys, units)


def copy_structures(source: Path, indices: Sequence[int], path: Path,
                    n: int | None = None) -> Path:
    """Write the frames ``indices`` of the extxyz file ``source`` to ``path`` as they are.

    ``n``: how many frames of ``source`` the indices refer to; a file with fewer frames
    has changed since the run and is an InputError.
    """
    import ase.io

    wanted = set(indices)
    frames, count = [], 0
    for count, atoms in enumerate(ase.io.iread(str(source), index=":"), start=1):
        if count - 1 in wanted:
            frames.append(atoms)
        if n is not None and count == n:
            break
    if n is not None and count < n:
        raise InputError(f"the run's split is for {n} structures, but the file now has "
                         f"{count}", path=str(source))
    with atomic_output(path) as temporary:
        ase.io.write(temporary, frames, format="extxyz")
    return path


def write_run_report(run_dir: str | os.PathLike, forces: str = "direct",
                     title: str = "tridft run") -> RunReport:
    """Evaluate run_dir/model.pt on the run's test split and write the report files."""
    from tridft.model.persistence import load_model
    from tridft.report.plots import write_plots
    from tridft.report.summary import write_markdown_report
    from tridft.train.evaluate import evaluate_and_compare

    run_dir = Path(run_dir)
    model_path = run_dir / MODEL_NAME
    model = load_model(model_path)
    split = run_split(run_dir, model.metadata, "test")
    if split.indices is not None and not split.indices:
        raise TriDFTError(f"{run_dir}: the run has no test structures to report on")
    records, test_file = split.read(copy_to=run_dir / "test.extxyz")

    metrics, pairs = evaluate_and_compare(model, records, forces=forces)
    metrics_path = run_dir / "metrics.json"
    write_json_atomic(metrics_path, {**metrics, "force_source": forces, "split": "test",
                                     "model": str(model_path), "data": str(split.source)})
    plots = write_plots(run_dir / "plots", pairs=pairs, metrics_csv=run_dir / "metrics.csv",
                        validation_csv=run_dir / "validation.csv")
    details = _details(model, model_path, split.source, len(records), forces)
    report_path = write_markdown_report(run_dir / "report.md", metrics, plots, title, details)
    return RunReport(metrics=metrics, metrics_path=metrics_path, report_path=report_path,
                     test_file=test_file, plots=plots)


def _details(model, model_path: Path, source: Path, n_test: int, forces: str) -> dict:
    training = model.metadata.get("training", {}) or {}
    split = model.metadata.get("split", {}) or {}
    details = {
        "model": f"`{model_path.name}` ({sum(p.numel() for p in model.parameters()):,} "
                 f"parameters)",
        "data": f"`{source}`",
        "split": ", ".join(f"{len(split[name])} {name}" for name in
                           ("train", "validation", "test") if name in split),
        "metrics": f"test split ({n_test} structures), {forces} forces, internal units",
    }
    if training:
        elapsed = training.get("total_elapsed_s", training.get("elapsed_s"))
        steps = training.get("total_steps", training.get("step"))
        details["training"] = (f"{steps} steps in {elapsed} s, best at step "
                               f"{training.get('best_step', '?')}, stopped by "
                               f"{str(training.get('stopped_because', '?')).replace('_', ' ')}")
    return details
