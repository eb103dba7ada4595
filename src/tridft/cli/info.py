"""``tridft info MODEL``: what a model file holds.

The architecture (every ModelConfig field), the heads and their kinds, parameter
counts, the elements, the units, and what the metadata says about training
(dataset statistics, split, summary).
"""

from __future__ import annotations

import argparse
from typing import Any

# Lists longer than this are shown by their length (a split's indices, for example).
_LONGEST_LIST = 12


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="show a model's architecture, heads, parameters and training data",
        description="Describe a model file without running it.")
    parser.add_argument("model", metavar="MODEL", help="model file (model.pt of a run)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tridft.model.persistence import load_model

    model = load_model(args.model)
    print(format_info(str(args.model), model))
    return 0


def format_info(name: str, model) -> str:
    from ase.data import chemical_symbols

    from tridft.units import UnitSpec

    lines = [name, "", "architecture"]
    for field, value in model.config.model_dump().items():
        lines.append(f"  {field:<26}{value}")
    lines += ["", "heads (name: kind, per structure or per atom)"]
    for head_name, head in model.heads.items():
        lines.append(f"  {head_name:<26}{head.kind}, per {head.level}")

    lines += ["", f"parameters                  {count_parameters(model):,}"]
    for part in ("backbone", "bottleneck"):
        lines.append(f"  {part:<26}{count_parameters(getattr(model, part)):,}")
    for head_name, head in model.heads.items():
        lines.append(f"  {'head ' + head_name:<26}{count_parameters(head):,}")

    elements = ", ".join(chemical_symbols[z] for z in model.elements) or "not recorded"
    lines += ["", f"elements                    {elements}"]

    metadata = dict(getattr(model, "metadata", {}) or {})
    units = metadata.pop("units", None) or {
        "energy": "eV", "length": "Angstrom", "forces": "eV/Angstrom",
        "polarizability": "Angstrom^3", "dipole": "e*Angstrom"}
    if isinstance(units, UnitSpec):
        units = vars(units)
    lines += ["", "units"] + _describe(units, indent=2)
    if metadata:
        lines += ["", "training (from the model's metadata)"] + _describe(metadata, indent=2)
    else:
        lines += ["", "training: no metadata (an untrained model?)"]
    return "\n".join(lines)


def count_parameters(module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def _describe(value: Any, indent: int) -> list[str]:
    """Plain data as indented 'key  value' lines; long lists as their length."""
    pad = " " * indent
    if not isinstance(value, dict):
        return [pad + _short(value)]
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{key}")
            lines += _describe(item, indent + 2)
        else:
            lines.append(f"{pad}{str(key):<{max(26 - indent + 2, 1)}}{_short(item)}")
    return lines


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > _LONGEST_LIST:
        return f"[{len(value)} entries]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)
