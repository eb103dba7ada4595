"""Figures of the benchmark results: learning curves, noise curves, speed vs atoms.

    .venv/bin/python benchmarks/plots.py                 # docs/results/*.json -> docs/figures/*.png
    .venv/bin/python benchmarks/plots.py --results DIR --figures DIR

Error bars are the sample standard deviation over seeds (none where a point has
one seed); for speed, the spread (min to max) of the repeated timings. A results
file that does not exist yet is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import summarize  # noqa: E402
# (metric key, axis label, factor to the plotted unit)
TASK_METRICS = (("energy_mae", "energy MAE (meV)", 1e3),
                ("forces_mae", "force MAE (meV/Å)", 1e3),
                ("polarizability_mae", "polarizability MAE (10⁻³ Å³)", 1e3))


def load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    if "runs" in results:  # summaries of the current code, whatever wrote the file
        results["summary"] = summarize(results["runs"])
    return results


def rows(results: dict, **match) -> list[dict]:
    return [row for row in results["summary"] if all(row.get(k) == v for k, v in match.items())]


def errorbar(axis, rows_: list[dict], x_key: str, metric: str, factor: float, **style) -> None:
    rows_ = sorted(rows_, key=lambda row: row[x_key])
    if not rows_ or f"{metric}_mean" not in rows_[0]:
        return
    axis.errorbar([row[x_key] for row in rows_], [row[f"{metric}_mean"] * factor for row in rows_],
                  yerr=[row[f"{metric}_std"] * factor for row in rows_], capsize=3,
                  marker="o", **style)


def plot_low_data(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    curve = rows(results, variant="learning_curve")
    for axis, (metric, label, factor) in zip(axes[:3], TASK_METRICS):
        errorbar(axis, curve, "n_train", metric, factor, label="multi-task (full model)")
        axis.set(xscale="log", yscale="log", xlabel="training structures", ylabel=label)
        plain_ticks(axis, sorted({row["n_train"] for row in curve}))
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_title("learning curves (ethanol, fixed test set of 100)")
    partial = rows(results, variant="partial_polarizability")
    n_pool = results["settings"]["n_pool"]
    for model, label in (("multi_task", "multi-task: E, F on all, α on a fraction"),
                         ("polarizability_only", "single-task α on the labelled fraction")):
        points = [{**row, "labels": max(1, round(row["polarizability_fraction"] * n_pool))}
                  for row in partial if row.get("model") == model]
        errorbar(axes[3], points, "labels", "polarizability_mae", 1e3, label=label)
    axes[3].set(xscale="log", yscale="log", xlabel="structures with a polarizability label",
                ylabel="polarizability MAE (10⁻³ Å³)", title="partial polarizability labels")
    plain_ticks(axes[3], sorted({max(1, round(row["polarizability_fraction"] * n_pool))
                                 for row in partial}))
    axes[3].grid(True, which="both", alpha=0.3)
    axes[3].legend(fontsize=8)
    save(figure, path)


def plot_noise(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    metrics = TASK_METRICS + (("jacobian_consistency_mae", "|F_direct + dE/dR| (meV/Å)", 1e3),)
    for jacobian, label in (("with", "with Jacobian regularizer"),
                            ("without", "without (jacobian_weight 0)")):
        points = rows(results, variant="noise", jacobian=jacobian)
        for axis, (metric, axis_label, factor) in zip(axes, metrics):
            errorbar(axis, points, "noise_forces", metric, factor, label=label)
            axis.set(xlabel="force noise σ_F on training labels (eV/Å)", ylabel=axis_label)
            axis.grid(True, alpha=0.3)
    axes[0].set_title("errors vs clean test labels")
    axes[0].legend(fontsize=8)
    save(figure, path)


def plot_speed(results: dict, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    labels = {"tridft": "tridft (direct forces)", "tridft_conservative": "tridft (-dE/dR)",
              "schnetpack_painn": "SchNetPack PaiNN", "mace": "MACE"}
    for name, speed in results.get("speed", {}).items():
        water = speed.get("water") or []
        if not water:
            continue
        atoms = [point["atoms"] for point in water]
        seconds = [point["seconds"] for point in water]
        low = [point["seconds"] - min(point.get("times", [point["seconds"]])) for point in water]
        high = [max(point.get("times", [point["seconds"]])) - point["seconds"] for point in water]
        line = axes[0].errorbar(atoms, seconds, yerr=[low, high], marker="o", capsize=3,
                                label=f"{labels.get(name, name)}, wall")
        if all(point.get("cpu_seconds") for point in water):
            axes[0].plot(atoms, [point["cpu_seconds"] for point in water], linestyle="--",
                         marker="x", color=line[0].get_color(),
                         label=f"{labels.get(name, name)}, CPU")
        axes[1].plot(atoms, [point["peak_rss_mb"] for point in water], marker="o",
                     label=labels.get(name, name))
    axes[0].set(xscale="log", yscale="log", xlabel="atoms (periodic water)",
                ylabel="seconds per evaluation",
                title="inference time, 1 thread (bars: min-max of repeats)")
    axes[1].set(xscale="log", yscale="log", xlabel="atoms (periodic water)",
                ylabel="peak resident memory (MB)", title="peak memory of the process")
    for axis in axes:
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    save(figure, path)


def plain_ticks(axis, values: list) -> None:
    """Ticks at the grid's own values, written as plain numbers (log axes crowd otherwise)."""
    axis.set_xticks(values)
    axis.set_xticklabels([str(v) for v in values])
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def save(figure, path: Path) -> None:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures")
    args = parser.parse_args(argv)
    made = []
    for name, plot, figure in (("low_data", plot_low_data, "learning_curves.png"),
                               ("noise", plot_noise, "noise_curves.png"),
                               ("peers", plot_speed, "speed_vs_atoms.png")):
        results = load(args.results / f"{name}.json")
        if results is not None:
            plot(results, args.figures / figure)
            made.append(str(args.figures / figure))
    print("\n".join(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
