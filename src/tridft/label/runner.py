"""Label many structures with PySCF, in parallel on Dask, resumably.

:func:`label_file` reads structures, labels each one with
:func:`tridft.label.pyscf_backend.label_structure` on a pool of workers, and
appends every labelled structure to an extxyz file the moment it finishes.

The output is safe to kill at any time:

* each frame is formatted in memory, then appended with one ``write`` followed by
  ``flush`` and ``os.fsync``, so at most the last frame can be cut short;
* on the next run a cut-short last frame is detected and dropped (the file is
  truncated back to its last complete frame);
* every frame carries ``label_key``, a sha256 of the atomic numbers, rounded
  positions, charge, multiplicity and the settings that change the numbers; a
  structure whose key is already in the output is skipped, so rerunning the same
  command finishes the job and labels each structure exactly once;
* a structure that fails (SCF not converged, ...) is never written half-labelled:
  it goes to ``OUT.failures.jsonl`` with its index and the reason, and is tried
  again on the next run.

Frames appear in the order they finish; ``source_index`` (the position in the
input) makes the order recoverable.

Workers: by default a Dask LocalCluster of N single-threaded processes (one per
core is the fastest setup for small molecules: BLAS and OpenMP threads in one
process oversubscribe). ``scheduler="tcp://host:port"`` connects to a running
Dask scheduler instead (a cluster started with dask-jobqueue, for instance), and
``workers=0`` labels in this process without Dask.

This module is the run itself; its parts live next to it: :mod:`tridft.label.jobs`
(jobs, label keys, labelling one job), :mod:`tridft.label.output_file` (scanning,
truncating and appending to the output and the failures file) and
:mod:`tridft.label.executors` (serial and Dask). Their public names are importable
from here too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tridft.label.executors import Outcome, dask_client, default_workers, run_dask, run_serial
from tridft.label.jobs import (Job, check_settings, label_job, label_key, make_jobs,  # noqa: F401
                               read_input)
from tridft.label.output_file import (AppendLog, failures_path, frame_text,  # noqa: F401
                                      prepare_output, scan_frames)
from tridft.label.pyscf_backend import LabelSettings

logger = logging.getLogger(__name__)


@dataclass
class LabelSummary:
    """What a :func:`label_file` run did.

    done:      structures labelled and written in this run
    skipped:   structures already in the output (or repeated in the input)
    failed:    structures that failed in this run (see ``failures_file``)
    elapsed_s: wall time of the labelling (after start-up), seconds
    compute_s: sum of the per-structure wall times on the workers, seconds
    """

    done: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    compute_s: float = 0.0
    output: str = ""
    failures_file: str = ""
    failure_reasons: list[str] = field(default_factory=list)

    @property
    def seconds_per_structure(self) -> float:
        """Wall-clock throughput: elapsed seconds per labelled structure (all workers)."""
        return self.elapsed_s / self.done if self.done else float("nan")

    @property
    def compute_per_structure(self) -> float:
        """Seconds one worker spent on one structure, on average."""
        return self.compute_s / self.done if self.done else float("nan")


def label_file(source, output, settings: LabelSettings | None = None, workers: int | None = None,
               scheduler: str | None = None, progress: bool = True,
               max_in_flight: int | None = None) -> LabelSummary:
    """Label every structure of ``source`` into the extxyz file ``output``, resumably.

    source:    a structure file (anything ASE reads), an ase.Atoms or a list of them
    output:    extxyz file; appended to, created if missing
    settings:  level of theory and properties (default: PBE/def2-SVP, all four)
    workers:   number of single-threaded local worker processes (default: one per
               core); 0 labels in this process without Dask
    scheduler: address of a running Dask scheduler ("tcp://host:8786"); overrides workers
    """
    settings = settings or LabelSettings()
    output = Path(output)
    path_name = str(source) if isinstance(source, (str, os.PathLike)) else None
    jobs = make_jobs(read_input(source), settings, path=path_name)
    check_settings(settings, np.concatenate([job.numbers for job in jobs]))

    output.parent.mkdir(parents=True, exist_ok=True)
    done_keys = prepare_output(output)
    todo, summary = _select_todo(jobs, done_keys)
    summary.output, summary.failures_file = str(output), str(failures_path(output))
    if not todo:
        logger.info("nothing to do: all %d structures are in %s", len(jobs), output)
        return summary
    workers = default_workers() if workers is None else int(workers)

    with contextlib.ExitStack() as stack:
        if scheduler or workers > 0:
            client = stack.enter_context(dask_client(workers, scheduler, settings.threads))
            outcomes = run_dask(todo, settings, client, max_in_flight)
        else:
            outcomes = run_serial(todo, settings)
        _consume(outcomes, output, settings, summary, len(todo), progress)
    return summary


def _select_todo(jobs: Sequence[Job], done_keys: set[str]) -> tuple[list[Job], LabelSummary]:
    """Jobs not yet in the output, each key once; the rest counts as skipped."""
    summary = LabelSummary()
    seen = set(done_keys)
    todo = []
    for job in jobs:
        if job.key in seen:
            summary.skipped += 1
        else:
            seen.add(job.key)
            todo.append(job)
    return todo, summary


def _consume(outcomes: Iterator[Outcome], output: Path, settings: LabelSettings,
             summary: LabelSummary, total: int, progress: bool) -> None:
    """Write each outcome as it arrives: a frame, or a line in the failures file."""
    from tqdm.auto import tqdm

    frames, failures = AppendLog(output), AppendLog(failures_path(output))
    start = time.perf_counter()
    bar = tqdm(total=total, desc="labelling", unit="structure", disable=not progress,
               dynamic_ncols=True)
    try:
        for job, outcome in outcomes:
            if outcome["ok"]:
                labels = outcome["labels"]
                frames.append(frame_text(job, labels))
                summary.done += 1
                summary.compute_s += float(labels["wall_time_s"])
            else:
                failures.append(json.dumps({"source_index": job.index, "label_key": job.key,
                                            "reason": outcome["reason"]}) + "\n")
                summary.failed += 1
                summary.failure_reasons.append(f"structure {job.index}: {outcome['reason']}")
                logger.warning("structure %d failed: %s", job.index, outcome["reason"])
            bar.update(1)
            if summary.failed:
                bar.set_postfix(failed=summary.failed)
    finally:
        summary.elapsed_s = time.perf_counter() - start
        bar.close()
        frames.close()
        failures.close()
