"""Tables of metrics: plain text for the terminal, markdown (report.md) for a run folder.

    print(format_table(metrics, title="test set"))
    write_markdown_report("runs/demo/report.md", metrics, plots, title="tridft demo")
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

from tridft.files import write_text_atomic
from tridft.train.evaluate import METRIC_UNITS

# Metric key -> what the reader sees; keys not listed are shown as they are.
METRIC_NAMES = {
    "n_structures": "structures",
    "n_atoms": "atoms",
    "energy_mae": "energy MAE",
    "energy_rmse": "energy RMSE",
    "energy_mae_per_atom": "energy MAE per atom",
    "forces_mae": "force MAE (components)",
    "forces_rmse": "force RMSE (components)",
    "direct_forces_mae": "direct-head force MAE",
    "direct_forces_rmse": "direct-head force RMSE",
    "conservative_forces_mae": "-dE/dR force MAE",
    "conservative_forces_rmse": "-dE/dR force RMSE",
    "polarizability_mae": "polarizability MAE (9 components)",
    "polarizability_rmse": "polarizability RMSE (9 components)",
    "polarizability_iso_mae": "isotropic polarizability MAE",
    "dipole_mae": "dipole MAE (components)",
    "dipole_rmse": "dipole RMSE (components)",
    "jacobian_consistency_mae": "|F_direct + dE/dR| mean",
    "jacobian_consistency_max": "|F_direct + dE/dR| max",
}


def format_value(value) -> str:
    """Counts as integers, other numbers with four significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def metric_rows(metrics: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(name, value, unit) for every metric, known ones first in METRIC_NAMES order."""
    order = [k for k in METRIC_NAMES if k in metrics] + \
            [k for k in metrics if k not in METRIC_NAMES]
    return [(METRIC_NAMES.get(k, k), format_value(metrics[k]), METRIC_UNITS.get(k, ""))
            for k in order]


def format_table(metrics: Mapping[str, object], title: str | None = None) -> str:
    """A plain-text table of ``metrics``, columns aligned."""
    rows = metric_rows(metrics)
    name_width = max([len(name) for name, _, _ in rows] + [6])
    value_width = max([len(value) for _, value, _ in rows] + [5])
    lines = [title] if title else []
    for name, value, unit in rows:
        lines.append(f"  {name:<{name_width}}  {value:>{value_width}}  {unit}".rstrip())
    return "\n".join(lines)


def markdown_table(metrics: Mapping[str, object]) -> str:
    lines = ["| metric | value | unit |", "|---|---:|---|"]
    lines += [f"| {_cell(name)} | {value} | {_cell(unit)} |"
              for name, value, unit in metric_rows(metrics)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text for a markdown table cell: a bare | would end the cell."""
    return text.replace("|", "\\|")


def markdown_report(metrics: Mapping[str, object], plots: Mapping[str, Path],
                    title: str, folder: str | os.PathLike,
                    details: Mapping[str, str] | None = None) -> str:
    """The text of a report in ``folder``: details, the metric table, the plots (linked
    relative to ``folder`` so the report moves with its run)."""
    parts = [f"# {title}", ""]
    for key, value in (details or {}).items():
        parts.append(f"- **{key}**: {value}")
    if details:
        parts.append("")
    parts += ["## Metrics", "", markdown_table(metrics), ""]
    if plots:
        parts += ["## Plots", ""]
        for caption, path in plots.items():
            link = os.path.relpath(Path(path), Path(folder))
            parts += [f"### {caption}", "", f"![{caption}]({link})", ""]
    return "\n".join(parts)


def write_markdown_report(path: str | os.PathLike, metrics: Mapping[str, object],
                          plots: Mapping[str, Path], title: str,
                          details: Mapping[str, str] | None = None) -> Path:
    """Write ``markdown_report`` to ``path`` atomically; plots are linked relative to it."""
    path = Path(path)
    write_text_atomic(path, markdown_report(metrics, plots, title, path.parent, details))
    return path
