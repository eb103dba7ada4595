"""``tridft info MODEL``: what a model file holds.

The architecture (every ModelConfig field), the heads and their kinds, parameter
counts, the elements, the units, and what the metadata a training run saved says:
the training data (file, split, dataset statistics) and the training itself (steps,
losses, the validation metrics of the saved model). Metadata this command does not
know (a fine-tuning summary, for example) is shown as it is.
"""

from __future__ import annotations

import argparse
from typing import Any

from tridft.cli.arguments import add_command, add_model

WIDTH = 28  # of the name column
# Lists longer than this are shown by their length.
_LONGEST_LIST = 12
INTERNAL_UNITS = {"energy": "eV", "length": "Angstrom", "forces": "eV/Angstrom",
                  "polarizability": "Angstrom^3", "dipole": "e*Angstrom"}
# Metadata keys shown in their own sections (see tridft.train.selection.model_metadata).
_KNOWN_METADATA = ("stats", "split", "data", "units", "config", "training")


HELP = "show a model's architecture, heads, parameters and training data"
DESCRIPTION = """Describe a model file without running it."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "info", run, HELP, DESCRIPTION)
    add_model(parser)


def run(args: argparse.Namespace) -> int:
    from tridft.model.persistence import load_model

    model = load_model(args.model)
    print(format_info(str(args.model), model))
    return 0


def format_info(name: str, model) -> str:
    metadata = dict(getattr(model, "metadata", {}) or {})
    sections = [[name], _architecture(model), _parameters(model),
                _units(metadata.get("units") or INTERNAL_UNITS)]
    if any(key in metadata for key in ("stats", "split", "data")):
        sections.append(_training_data(metadata))
    if metadata.get("training"):
        sections.append(_training(metadata["training"], metadata.get("config", {}) or {}))
    if not metadata:
        sections.append(["training: no metadata (an untrained model?)"])
    sections.append(_uncertainty(getattr(model, "uncertainty", None)))
    other = {k: v for k, v in metadata.items() if k not in _KNOWN_METADATA}
    if other:
        sections.append(["other metadata"] + _describe(other, indent=2))
    return "\n\n".join("\n".join(lines) for lines in sections)


def _uncertainty(llpr) -> list[str]:
    """The calibration of the uncertainties (docs/uncertainty.md), or its absence."""
    if llpr is None:
        return ["uncertainty: not calibrated (tridft calibrate MODEL adds it)"]
    lines = ["uncertainty (LLPR, calibrated on validation)"]
    for name, report in llpr.report.items():
        lines.append(_row(name, f"alpha^2 {report['scale']:.3g}, regulariser "
                                f"{report['regularizer_relative']:.0e}, disagreement weight "
                                f"{report.get('disagreement', 0.0):.3g}"))
    return lines


def _row(name: str, value: Any, indent: int = 2) -> str:
    return f"{' ' * indent}{name:<{WIDTH - indent}} {value}"


def _architecture(model) -> list[str]:
    from ase.data import chemical_symbols

    lines = ["architecture"]
    lines += [_row(field, value) for field, value in model.config.model_dump().items()]
    lines += ["", "heads (name: kind, per structure or per atom)"]
    lines += [_row(name, f"{head.kind}, per {head.level}") for name, head in model.heads.items()]
    elements = ", ".join(chemical_symbols[z] for z in model.elements) or "not recorded"
    lines += ["", _row("elements", elements, indent=0)]
    return lines + _repulsion(model)


def _repulsion(model) -> list[str]:
    """Where the core repulsion starts for each pair of the model's elements (Angstrom)."""
    from ase.data import chemical_symbols

    repulsion = getattr(model, "repulsion", None)
    if repulsion is None or not repulsion.active:
        return [_row("core repulsion", "none", indent=0)]
    onsets = repulsion.onsets
    pairs = [f"{chemical_symbols[a]}-{chemical_symbols[b]} {float(onsets[a, b]):.3g}"
             for k, a in enumerate(model.elements) for b in model.elements[k:]]
    return [_row("core repulsion below", ", ".join(pairs) + " Angstrom", indent=0)]


def count_parameters(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _parameters(model) -> list[str]:
    lines = [_row("parameters", f"{count_parameters(model):,}", indent=0)]
    for part in ("backbone", "bottleneck"):
        lines.append(_row(part, f"{count_parameters(getattr(model, part)):,}"))
    for name, head in model.heads.items():
        lines.append(_row(f"head {name}", f"{count_parameters(head):,}"))
    return lines


def _units(units: dict) -> list[str]:
    return ["units (of every input and output)"] + [_row(k, v) for k, v in units.items()]


def _training_data(metadata: dict) -> list[str]:
    from ase.data import chemical_symbols

    stats = metadata.get("stats", {}) or {}
    split = metadata.get("split", {}) or {}
    sources = metadata.get("data", {}) or {}
    data_config = (metadata.get("config", {}) or {}).get("data", {}) or {}
    lines = ["training data"]
    if sources.get("train"):
        limit = data_config.get("max_structures")
        lines.append(_row("file", sources["train"] + (f" (first {limit} structures)"
                                                      if limit else "")))
    for name in ("validation", "test"):
        if sources.get(name):
            lines.append(_row(f"{name} file", sources[name]))
    if split:
        counts = ", ".join(f"{len(split.get(part, []))} {part}"
                           for part in ("train", "validation", "test"))
        lines.append(_row("split", f"{counts} (seed {split.get('seed')})"))
    if stats.get("label_counts"):
        lines.append(_row("labels in the train split", ", ".join(
            f"{label} {count}" for label, count in stats["label_counts"].items())))
    references = stats.get("reference_energies") or {}
    if references.get("numbers"):
        lines.append(_row("reference energies", ", ".join(
            f"{chemical_symbols[int(z)]} {float(e):.6g}"
            for z, e in zip(references["numbers"], references["values"])) + " eV"))
    described = [("energy_per_atom_shift", "energy per atom shift", "eV"),
                 ("energy_per_atom_scale", "energy per atom scale", "eV"),
                 ("forces_rms", "forces rms", "eV/Angstrom"),
                 ("polarizability_per_atom_mean", "polarizability per atom", "Angstrom^3"),
                 ("polarizability_scale", "polarizability scale", "Angstrom^3"),
                 ("dipole_scale", "dipole scale", "e*Angstrom"),
                 ("average_neighbors", "average neighbours", "")]
    for key, label, unit in described:
        if stats.get(key) is not None:
            lines.append(_row(label, f"{_short(stats[key])} {unit}".rstrip()))
    return lines


def _training(summary: dict, config: dict) -> list[str]:
    from tridft.report.summary import format_table

    steps = summary.get("total_steps", summary.get("step"))
    elapsed = summary.get("total_elapsed_s", summary.get("elapsed_s"))
    stopped = str(summary.get("stopped_because") or "").replace("_", " ")
    lines = ["training",
             _row("steps", f"{steps} ({elapsed} s)" + (f", stopped by {stopped}"
                                                       if stopped else "")),
             _row("saved model", f"step {summary.get('best_step', summary.get('step'))}")]
    if summary.get("force_source"):
        lines.append(_row("forces trained", summary["force_source"]))
    loss = config.get("loss", {}) or {}
    if loss.get("weights"):
        weights = ", ".join(f"{task} {_short(w)}" for task, w in loss["weights"].items())
        lines.append(_row("loss", f"{loss.get('kind', '?')}, weights {weights}, "
                                  f"balancing {loss.get('balancing', '?')}"
                                  + (" + PCGrad" if loss.get("pcgrad") else "")))
        lines.append(_row("regularizers", f"Jacobian {_short(loss.get('jacobian_weight'))}, "
                                          f"KL beta {_short(loss.get('kl_beta'))}"))
    if summary.get("validation_metrics"):
        lines += ["", format_table(summary["validation_metrics"],
                                   title="validation metrics of the saved model")]
    return lines


def _describe(value: Any, indent: int) -> list[str]:
    """Plain data as indented 'key  value' lines; long lists as their length."""
    if not isinstance(value, dict):
        return [" " * indent + _short(value)]
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(" " * indent + str(key))
            lines += _describe(item, indent + 2)
        elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            for number, entry in enumerate(item, start=1):
                lines.append(" " * indent + f"{key} {number}")
                lines += _describe(entry, indent + 2)
        else:
            lines.append(_row(str(key), _short(item), indent))
    return lines


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > _LONGEST_LIST:
        return f"[{len(value)} entries]"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
