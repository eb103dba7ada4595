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


def metric_columns(tasks: list[str], objective, balancer) -> list[str]:
    pairs = [f"cos_{a}|{b}" for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    return (["step", "epoch", "time_s", "lr", "loss_total"]
            + [f"loss_{task}" for task in tasks]
            + [f"reg_{term.name}" for term in objective.regularizers]
            + ["grad_norm"] + [f"weight_{task}" for task in tasks] + pairs)


def short_metrics(metrics: dict) -> str:
    """'E 12.3 meV F 45.6 meV/A a 0.012 A^3' for the progress bar and the log."""
    parts = []
    if "energy_mae" in metrics:
        parts.append(f"E {1000 * metrics['energy_mae']:.1f} meV")
    if "forces_mae" in metrics:
        parts.append(f"F {1000 * metrics['forces_mae']:.1f} meV/A")
    if "conservative_forces_mae" in metrics:
        parts.append(f"-dE/dR {1000 * metrics['conservative_forces_mae']:.1f} meV/A")
    if "polarizability_mae" in metrics:
        parts.append(f"a {metrics['polarizability_mae']:.4f} A^3")
    return " ".join(parts)


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
