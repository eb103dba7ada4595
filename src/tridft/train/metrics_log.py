"""The run's logbook: CSV files with a header and one flushed row per entry (+ TensorBoard).

    log = CsvLog(run_dir / "metrics.csv")
    log.write({"step": 20, "lr": 1e-3, "loss_energy": 0.4})

Columns are fixed by the first row written (or the existing header when a run is
resumed); a later row may leave columns empty but not add new ones. When a run
resumes from a checkpoint, ``truncate_after(step)`` drops the rows that the
interrupted run logged after it, so every step appears once.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

from tridft.files import write_text_atomic

logger = logging.getLogger(__name__)


class CsvLog:
    """Append rows (dicts) to a CSV file, flushing each one."""

    def __init__(self, path: str | Path, columns: list[str] | None = None):
        self.path = Path(path)
        self.columns = list(columns) if columns else None
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as stream:
                self.columns = next(csv.reader(stream))

    def write(self, row: dict) -> None:
        if self.columns is None:
            self.columns = list(row)
        unknown = [key for key in row if key not in self.columns]
        if unknown:
            raise ValueError(f"{self.path.name}: no column for {', '.join(unknown)}")
        new_file = not self.path.is_file() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as stream:
            writer = csv.writer(stream)
            if new_file:
                writer.writerow(self.columns)
            writer.writerow([_format(row.get(column)) for column in self.columns])
            stream.flush()

    def truncate_after(self, step: int) -> None:
        """Keep the header and the rows whose ``step`` is at most ``step`` (atomically)."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as stream:
            rows = list(csv.reader(stream))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        column = header.index("step") if "step" in header else None
        kept = [r for r in body if column is None or (r and int(float(r[column])) <= step)]
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header] + kept)
        write_text_atomic(self.path, buffer.getvalue())


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class TensorBoardLog:
    """Scalars to TensorBoard event files when ``torch.utils.tensorboard`` imports; else nothing."""

    def __init__(self, folder: str | Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.writer = None
            logger.debug("tensorboard is not installed: no event files")
            return
        self.writer = SummaryWriter(str(folder))

    def write(self, row: dict, step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(prefix + key, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
