"""Markdown tables of the benchmark results, for docs/benchmarks.md.

    .venv/bin/python benchmarks/tables.py [--results DIR]   # prints every table
    .venv/bin/python benchmarks/tables.py --update docs/benchmarks.md

Means and sample standard deviations over seeds ("± 0" is never shown: a value
without a spread had one seed). Energies in meV, forces in meV/Å,
polarizabilities in 10⁻³ Å³ (per tensor component), times in s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import summarize  # noqa: E402
COLUMNS = (("energy_mae", 1e3, "energy MAE (meV)"), ("forces_mae", 1e3, "force MAE (meV/Å)"),
           ("polarizability_mae", 1e3, "α MAE (10⁻³ Å³)"),
           ("jacobian_consistency_mae", 1e3, "\\|F_direct + dE/dR\\| (meV/Å)"),
           ("train_time_s", 1.0, "train wall time (s)"), ("train_cpu_s", 1.0, "train CPU time (s)"))
# A polarizability MAE above this (A^3) is the level of predicting the mean training
# tensor (0.201 A^3 on the test set): a run whose polarizability never left the mean.
STUCK_POLARIZABILITY_MAE = 0.19
TASK_OF = {"energy_mae": "energy", "forces_mae": "forces", "polarizability_mae": "polarizability"}


def value(row: dict, metric: str, factor: float, digits: int = 1) -> str:
    if f"{metric}_mean" not in row:
        return "—"
    mean, std = row[f"{metric}_mean"] * factor, row[f"{metric}_std"] * factor
    if row.get(f"{metric}_n", row.get("n_seeds", 1)) > 1:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def ablations(results: dict) -> str:
    tasks_of = {run["variant"]: run.get("tasks") for run in results["runs"]}
    lines = []
    for row in results["summary"]:
        tasks = tasks_of.get(row["variant"]) or list(TASK_OF.values())
        cells = [f"`{row['variant']}`", str(row["n_seeds"])]
        for metric, factor, _ in COLUMNS:
            trained = TASK_OF.get(metric) in tasks or metric not in TASK_OF
            cells.append(value(row, metric, factor) if trained else "(not trained)")
        lines.append(cells)
    return table(["variant", "seeds"] + [c[2] for c in COLUMNS], lines)


def learning_curve(results: dict) -> str:
    rows_ = sorted((r for r in results["summary"] if r["variant"] == "learning_curve"),
                   key=lambda r: r["n_train"])
    return table(["training structures", "seeds"] + [c[2] for c in COLUMNS],
                 [[str(r["n_train"]), str(r["n_seeds"])] + [value(r, m, f) for m, f, _ in COLUMNS]
                  for r in rows_])


def partial(results: dict) -> str:
    n_pool = results["settings"]["n_pool"]
    rows_ = [r for r in results["summary"] if r["variant"] == "partial_polarizability"]
    lines = []
    for fraction in sorted({r["polarizability_fraction"] for r in rows_}):
        multi = next((r for r in rows_ if r["polarizability_fraction"] == fraction
                      and r["model"] == "multi_task"), None)
        single = next((r for r in rows_ if r["polarizability_fraction"] == fraction
                       and r["model"] == "polarizability_only"), None)
        ratio = "—"
        if multi and single and "polarizability_mae_mean" in multi \
                and "polarizability_mae_mean" in single:
            ratio = f"{multi['polarizability_mae_mean'] / single['polarizability_mae_mean']:.2f}"
        stuck = {model: sum(1 for run in results["runs"]
                            if run.get("variant") == "partial_polarizability"
                            and run.get("model") == model
                            and run.get("polarizability_fraction") == fraction
                            and run.get("polarizability_mae", 0) > STUCK_POLARIZABILITY_MAE)
                 for model in ("multi_task", "polarizability_only")}
        lines.append([f"{fraction:.0%}", str(max(1, round(fraction * n_pool))),
                      value(multi, "polarizability_mae", 1e3) if multi else "—",
                      f"{multi['n_seeds']} ({stuck['multi_task']})" if multi else "0",
                      value(single, "polarizability_mae", 1e3) if single else "—",
                      f"{single['n_seeds']} ({stuck['polarizability_only']})" if single else "0",
                      ratio])
    return table(["α labels", "structures with α", "multi-task α MAE (10⁻³ Å³)",
                  "seeds (stuck)", "single-task α MAE (10⁻³ Å³)", "seeds (stuck)",
                  "multi / single"], lines)


def noise(results: dict) -> str:
    scales = results["settings"]["noise_scales"]
    lines = []
    for row in sorted((r for r in results["summary"] if r["variant"] == "noise"),
                      key=lambda r: (r["noise_forces"], r["jacobian"] != "with")):
        scale = scales.get(str(row["noise_forces"]), {})
        lines.append([f"{row['noise_forces']:.2f}", f"{scale.get('energy', 0) * 1e3:.1f}",
                      f"{scale.get('polarizability', 0) * 1e3:.1f}", row["jacobian"],
                      str(row["n_seeds"])] + [value(row, m, f) for m, f, _ in COLUMNS])
    return table(["σ_F (eV/Å)", "σ_E (meV)", "σ_α (10⁻³ Å³)", "Jacobian", "seeds"]
                 + [c[2] for c in COLUMNS], lines)


def peers_training(results: dict) -> str:
    lines = []
    for name, run in results.get("training", {}).items():
        if "error" in run:
            lines.append([name, "failed: " + " ".join(run["error"])] + ["—"] * 5)
            continue
        cells = [f"`{name}`", ", ".join(run.get("tasks", [])),
                 f"{run.get('steps', '—')} ({run.get('epochs', '—')})"]
        for metric in ("energy_mae", "forces_mae", "polarizability_mae"):
            cells.append(f"{run[metric] * 1e3:.1f}" if metric in run
                         and TASK_OF[metric] in run.get("tasks", []) else "—")
        cells.append(f"{run.get('train_time_s', 0):.0f}")
        lines.append(cells)
    return table(["model", "trained on", "steps (epochs)", "energy MAE (meV)", "force MAE (meV/Å)",
                  "α MAE (10⁻³ Å³)", "train time (s)"], lines)


def peers_speed(results: dict) -> str:
    lines = []
    for name, speed in results.get("speed", {}).items():
        ethanol = speed.get("ethanol") or {}
        water = {point["atoms"]: point for point in speed.get("water", [])}
        box = water.get(1536, {})
        largest = max(water) if water else None
        ethanol_cpu = ethanol.get("cpu_seconds")
        box_cpu = box.get("cpu_seconds")
        lines.append([
            f"`{name}`",
            f"{ethanol['structures_per_s']:.0f}" if ethanol else "—",
            f"{ethanol['structures'] / ethanol_cpu:.0f}" if ethanol_cpu else "—",
            f"{ethanol['atoms_per_s']:.0f}" if ethanol else "—",
            f"{box['seconds']:.2f}" if box else "—",
            f"{box_cpu:.2f}" if box_cpu else "—",
            f"{box['atoms_per_s']:.0f}" if box else "—",
            f"{box['peak_rss_mb']:.0f}" if box else "—",
            f"{water[largest]['seconds']:.1f} ({largest})" if largest else "—",
            f"{water[largest]['peak_rss_mb']:.0f}" if largest else "—",
            " ".join(speed.get("error", []) + ([speed["note"]] if "note" in speed else []))])
    header = ["model", "ethanol structures/s (wall)", "ethanol structures/CPU-s",
              "ethanol atoms/s (wall)", "water 1,536: s (wall)", "water 1,536: CPU s",
              "water 1,536: atoms/s (wall)", "peak MB (1,536)", "largest box: s (atoms)",
              "peak MB (largest)", "note"]
    cpu_columns = (2, 5)
    if all(line[c] == "—" for line in lines for c in cpu_columns):  # no CPU times recorded
        keep = [i for i in range(len(header)) if i not in cpu_columns]
        header = [header[i] for i in keep]
        lines = [[line[i] for i in keep] for line in lines]
    return table(header, lines)


def speed_vs_atoms(results: dict) -> str:
    names = list(results.get("speed", {}))
    sizes = sorted({p["atoms"] for s in results.get("speed", {}).values()
                    for p in s.get("water", [])})
    lines = []
    for size in sizes:
        cells = [str(size)]
        for name in names:
            point = next((p for p in results["speed"][name].get("water", [])
                          if p["atoms"] == size), None)
            if point is None:
                cells.append("—")
            elif point.get("cpu_seconds") is not None:
                cells.append(f"{point['seconds']:.2f} / {point['cpu_seconds']:.2f}")
            else:
                cells.append(f"{point['seconds']:.2f}")
        lines.append(cells)
    return table(["atoms"] + [f"`{n}`: wall / CPU s" for n in names], lines)


def update(document: Path, rendered: dict[str, str]) -> None:
    """Replace the text between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``."""
    text = document.read_text()
    for name, body in rendered.items():
        start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
        if start in text and end in text:
            head, rest = text.split(start, 1)
            _, tail = rest.split(end, 1)
            text = f"{head}{start}\n{body}\n{end}{tail}"
    temporary = document.with_name(f".{document.name}.tmp")
    temporary.write_text(text)
    temporary.replace(document)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--update", type=Path, default=None,
                        help="write the tables into this markdown file, between "
                             "<!-- table:NAME --> and <!-- /table:NAME --> markers")
    args = parser.parse_args(argv)
    rendered: dict[str, str] = {}
    sections = (("ablations", [("Ablations", ablations)]),
                ("low_data", [("Learning curve", learning_curve),
                              ("Partial polarizability labels", partial)]),
                ("noise", [("Label noise", noise)]),
                ("peers", [("Peers: accuracy at equal budget", peers_training),
                           ("Peers: speed and memory", peers_speed),
                           ("Peers: time vs atoms", speed_vs_atoms)]))
    for name, tables in sections:
        path = args.results / f"{name}.json"
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        if "runs" in results:  # summaries of the current code, whatever wrote the file
            results["summary"] = summarize(results["runs"])
        state = "complete" if results.get("complete") else "PARTIAL"
        for title, render in tables:
            body = render(results)
            rendered[render.__name__] = body
            print(f"### {title} ({name}.json, {state}; marker table:{render.__name__})\n")
            print(body)
            print()
    if args.update is not None:
        update(args.update, rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
