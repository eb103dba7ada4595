"""What a run shows while it trains: running means, log columns, the progress bar.

The numbers themselves are written by :mod:`tridft.train.metrics_log`; this module
decides the columns of metrics.csv and the short texts of the bar and the log.
"""

from __future__ import annotations


class RunningMeans:
    """Means of logged values over the steps since the last log line."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in self.sums}


def metric_columns(tasks: list[str], objective, balancer,
                   extra_regularizers: list[str] = ()) -> list[str]:
    """The columns of metrics.csv; ``extra_regularizers`` are added to the losses outside
    the objective (the denoising pass, train/denoising.py)."""
    pairs = [f"cos_{a}|{b}" for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    return (["step", "epoch", "time_s", "lr", "loss_total"]
            + [f"loss_{task}" for task in tasks]
            + [f"reg_{term.name}" for term in objective.regularizers]
            + [f"reg_{name}" for name in extra_regularizers]
            + ["grad_norm", "spikes_clipped"] + [f"weight_{task}" for task in tasks] + pairs)


# (metric, name, scale, unit, format) of the MAEs the texts show, in their order.
_SHORT_MAES = (("energy_mae", "E", 1000, "meV", ".1f"),
               ("forces_mae", "F", 1000, "meV/A", ".1f"),
               ("conservative_forces_mae", "-dE/dR", 1000, "meV/A", ".1f"),
               ("polarizability_mae", "a", 1, "A^3", ".4f"))
_LONG_MAES = (("energy_mae", "energy", 1000, "meV", ".1f"),
              ("forces_mae", "forces", 1000, "meV/A", ".1f"),
              ("polarizability_mae", "polarizability", 1, "A^3", ".4f"),
              ("dipole_mae", "dipole", 1000, "me*A", ".1f"))
_CONSISTENCY_MAE = (("jacobian_consistency_mae", "|F + dE/dR|", 1000, "meV/A", ".1f"),)
# Tasks whose MAEs have a unit above; the MAEs of further heads are shown as plain numbers.
_TASKS_WITH_UNITS = ("energy", "forces", "direct_forces", "conservative_forces",
                     "polarizability", "polarizability_iso", "dipole", "jacobian_consistency")


def _mae_texts(metrics: dict, shown) -> list[str]:
    return [f"{name} {scale * metrics[key]:{spec}} {unit}"
            for key, name, scale, unit, spec in shown if key in metrics]


def short_metrics(metrics: dict) -> str:
    """'E 12.3 meV F 45.6 meV/A a 0.012 A^3' for the progress bar and the log."""
    return " ".join(_mae_texts(metrics, _SHORT_MAES))


def format_metrics(metrics: dict) -> str:
    """'energy 12.3 meV, forces 45.6 meV/A, polarizability 0.0123 A^3 (MAE)'."""
    parts = _mae_texts(metrics, _LONG_MAES)
    parts += [f"{key[:-4]} {value:.4g}" for key, value in metrics.items()
              if key.endswith("_mae") and key[:-4] not in _TASKS_WITH_UNITS]
    parts += _mae_texts(metrics, _CONSISTENCY_MAE)
    return ", ".join(parts) + " (MAE)"


_SHORT_TASK_NAMES = {"energy": "E", "forces": "F", "conservative_forces": "-dE/dR",
                     "polarizability": "a"}


def short_losses(row: dict) -> str:
    """'loss 0.52 (E 0.1 F 0.03 a 0.2)': the total and normalised task losses, for the bar."""
    tasks = " ".join(f"{_SHORT_TASK_NAMES.get(key[5:], key[5:])} {value:.2g}"
                     for key, value in row.items()
                     if key.startswith("loss_") and key != "loss_total")
    return f"loss {row['loss_total']:.3g} ({tasks})"


def progress_bar(enabled: bool, initial: int, total: int | None):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    # disable=None: tqdm shows itself only on a terminal.
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=None)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...
    def set_description(self, text: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...
