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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from tridft.errors import InputError, TriDFTError
from tridft.label.pyscf_backend import (LabelSettings, check_functional, check_structure,
                                        label_structure, warm_up)

logger = logging.getLogger(__name__)

# Positions are hashed after rounding to this many decimals (Angstrom): well below any
# physical difference, well above the noise of writing and re-reading a file.
KEY_DECIMALS = 6
_KEY_PATTERN = re.compile(rb"\blabel_key=\"?([0-9a-f]{64})")


# --------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One structure to label.

    index:        position of the structure in the input (``source_index`` in the output)
    numbers:      (n,)   atomic numbers
    positions:    (n, 3) Angstrom
    charge:       total charge, e
    multiplicity: 2S+1
    key:          label_key, see :func:`label_key`
    """

    index: int
    numbers: np.ndarray
    positions: np.ndarray
    charge: int
    multiplicity: int
    key: str


def label_key(numbers: Sequence[int], positions, charge: int, multiplicity: int,
              settings: LabelSettings, cell=None) -> str:
    """sha256 (hex) identifying "this structure labelled with these settings".

    Positions (Angstrom) are rounded to KEY_DECIMALS decimals and hashed as integers,
    so -0.0 and 0.0, or a value re-read from a file, give the same key.
    """
    scaled = np.rint(np.asarray(positions, dtype=float) * 10**KEY_DECIMALS).astype(np.int64)
    content = {
        "numbers": [int(z) for z in numbers],
        "positions": scaled.ravel().tolist(),
        "cell": None if cell is None else np.round(np.asarray(cell, float), 6).ravel().tolist(),
        "charge": int(charge),
        "multiplicity": int(multiplicity),
        "settings": settings.identity(),
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read_input(source) -> list:
    """The structures to label, as tridft Records (labels in the file are ignored).

    ``charge`` and ``multiplicity`` in a structure's info, when present, land in
    ``record.extra``.
    """
    from tridft.data.io import KeyMap, read_structures

    keys = KeyMap(energy=None, forces=None, polarizability=None, dipole=None,
                  extra={"charge": "charge", "multiplicity": "multiplicity"})
    return read_structures(source, keys=keys)


def make_jobs(records: Sequence, settings: LabelSettings, path: str | None = None) -> list[Job]:
    """One Job per record; refuses periodic structures and impossible electron counts.

    Charge and multiplicity come from the record (``extra``) when it has them,
    otherwise from ``settings``. Errors name the structure index.
    """
    jobs = []
    for index, record in enumerate(records):
        charge = _integer(record.extra.get("charge"), settings.charge, "charge", path, index)
        multiplicity = _integer(record.extra.get("multiplicity"), settings.multiplicity,
                                "multiplicity", path, index)
        try:
            check_structure(record.numbers, charge, multiplicity, pbc=record.pbc)
        except InputError as error:
            raise InputError(error.message, path=path, index=index) from None
        key = label_key(record.numbers, record.positions, charge, multiplicity, settings)
        jobs.append(Job(index, np.asarray(record.numbers), np.asarray(record.positions),
                        charge, multiplicity, key))
    if not jobs:
        raise InputError("no structures to label", path=path)
    return jobs


def _integer(value, default: int, name: str, path, index) -> int:
    if value is None:
        return int(default)
    number = float(np.asarray(value).reshape(-1)[0])
    if number != round(number):
        raise InputError(f"{name} must be a whole number, got {number}", path=path,
                         index=index, field=name)
    return int(round(number))


def check_settings(settings: LabelSettings, elements: Iterable[int]) -> None:
    """Fail before any work starts if the functional or a basis set cannot be used."""
    check_functional(settings.xc)
    bases = [("basis set", settings.basis)]
    if settings.density_fit and settings.auxbasis.lower() != "auto":
        bases.append(("auxiliary basis set", settings.auxbasis))
    for z in sorted(set(int(z) for z in elements)):
        for what, name in bases:
            _check_basis(what, name, z)


def _check_basis(what: str, name: str, z: int) -> None:
    from pyscf import gto
    from pyscf.data.elements import ELEMENTS
    from pyscf.lib.exceptions import BasisNotFoundError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PySCF's hint to install basis-set-exchange
        try:
            gto.basis.load(name, ELEMENTS[z])
        except BasisNotFoundError as error:
            if "Unknown basis" in str(error):
                raise InputError(f"unknown {what} '{name}'") from None
            raise InputError(f"{what} '{name}' has no functions for {ELEMENTS[z]}") from None


# --------------------------------------------------------------------------- one task

def label_job(job: Job, settings: LabelSettings) -> dict:
    """Label one job; runs on a worker. Never raises: failures come back as data.

    Returns {"ok": True, "labels": {...}} or {"ok": False, "reason": "one line"}.
    """
    try:
        labels = label_structure(job.numbers, job.positions, settings,
                                 charge=job.charge, multiplicity=job.multiplicity)
        return {"ok": True, "labels": labels}
    except TriDFTError as error:
        return {"ok": False, "reason": str(error)}
    except Exception as error:  # noqa: BLE001 - PySCF can fail in many ways; record, go on
        logger.debug("structure %d failed:\n%s", job.index, traceback.format_exc())
        return {"ok": False, "reason": f"{type(error).__name__}: {_one_line(error)}"}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --------------------------------------------------------------------------- output file

def prepare_output(path: Path) -> set[str]:
    """Make ``path`` end with a complete frame and return the label_keys it holds.

    A last frame cut short by a killed run is dropped by truncating the file back
    to the end of its last complete frame. A missing file is fine (nothing done).
    """
    if not path.exists():
        return set()
    valid_bytes, keys = scan_frames(path)
    size = path.stat().st_size
    if valid_bytes < size:
        logger.warning("%s: dropping an incomplete last frame (%d bytes) left by an "
                       "interrupted run", path, size - valid_bytes)
        os.truncate(path, valid_bytes)
    return keys


def scan_frames(path: Path) -> tuple[int, set[str]]:
    """(bytes of complete extxyz frames at the start of ``path``, their label_keys).

    A frame is complete when its atom-count line, its comment line and all of its
    atom lines are there, each ending with a newline: a write cut anywhere leaves a
    last line without its newline or fewer lines than the count says.
    """
    keys: set[str] = set()
    valid = 0
    with open(path, "rb") as handle:
        while True:
            header = handle.readline()
            if not header.strip():
                # A blank line between frames is allowed; the end of the file is the end.
                if header.endswith(b"\n"):
                    valid = handle.tell()
                    continue
                return valid, keys
            try:
                n_atoms = int(header)
            except ValueError:
                return valid, keys
            lines = [handle.readline() for _ in range(n_atoms + 1)]
            if not header.endswith(b"\n") or not all(line.endswith(b"\n") for line in lines):
                return valid, keys
            match = _KEY_PATTERN.search(lines[0])
            if match:
                keys.add(match.group(1).decode())
            valid = handle.tell()


class AppendLog:
    """An append-only file where each ``append(text)`` is one durable write."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def append(self, text: str) -> None:
        if self._handle is None:  # created on first use: no empty failures file
            self._handle = open(self.path, "a", encoding="utf-8")
        self._handle.write(text)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def frame_text(job: Job, labels: dict) -> str:
    """One extxyz frame (text) for a labelled job, with the keys tridft reads by default (KeyMap).

    info: energy (eV), polarizability (9 numbers row-major, Angstrom^3), dipole (3,
    e*Angstrom), level_of_theory, program, wall_time_s, source_index, label_key,
    charge, multiplicity; arrays: forces (eV/Angstrom).
    """
    import ase
    import ase.io

    atoms = ase.Atoms(numbers=job.numbers, positions=job.positions, pbc=False)
    if "energy" in labels:
        atoms.info["energy"] = float(labels["energy"])
    if "polarizability" in labels:
        atoms.info["polarizability"] = np.asarray(labels["polarizability"]).reshape(9)
    if "dipole" in labels:
        atoms.info["dipole"] = np.asarray(labels["dipole"]).reshape(3)
    atoms.info.update(level_of_theory=labels["level_of_theory"], program=labels["program"],
                      wall_time_s=round(float(labels["wall_time_s"]), 3),
                      source_index=job.index, label_key=job.key, charge=job.charge,
                      multiplicity=job.multiplicity)
    if "forces" in labels:
        atoms.arrays["forces"] = np.asarray(labels["forces"], dtype=float)
    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    return buffer.getvalue()


def failures_path(output: Path) -> Path:
    """``OUT.failures.jsonl`` next to ``OUT``."""
    return output.with_name(output.name + ".failures.jsonl")


# --------------------------------------------------------------------------- executors

Outcome = tuple[Job, dict]


def run_serial(jobs: Sequence[Job], settings: LabelSettings) -> Iterator[Outcome]:
    """Label in this process, one after the other (``workers=0``; no Dask needed)."""
    for job in jobs:
        yield job, label_job(job, settings)


def run_dask(jobs: Sequence[Job], settings: LabelSettings, client,
             max_in_flight: int | None = None) -> Iterator[Outcome]:
    """Label on a Dask cluster; yields each job as soon as it finishes.

    At most ``max_in_flight`` tasks are submitted at a time, so that a run over a
    hundred thousand structures does not hold a hundred thousand futures.
    """
    from dask.distributed import as_completed

    try:
        versions = set(client.run(warm_up).values())
    except (ImportError, TriDFTError) as error:
        raise TriDFTError(f"the Dask workers cannot label: {_one_line(error)} (install "
                          "tridft with its 'label' extra where the workers run)") from None
    if len(versions) > 1:
        logger.warning("workers run different PySCF versions: %s", ", ".join(sorted(versions)))
    if max_in_flight is None:
        # Workers may still be joining (a batch queue): a generous, fixed floor.
        max_in_flight = max(1000, 4 * sum(client.nthreads().values()))
    pending = iter(jobs)
    by_future = {}

    def submit_next(n: int):
        for job in (j for _, j in zip(range(n), pending)):
            future = client.submit(label_job, job, settings, pure=False,
                                   key=f"label-{job.index}-{job.key[:12]}")
            by_future[future] = job
            yield future

    completed = as_completed(list(submit_next(max_in_flight)))
    for future in completed:
        job = by_future.pop(future)
        try:
            outcome = future.result()
        except Exception as error:  # noqa: BLE001 - a worker died (memory, killed): record it
            outcome = {"ok": False, "reason": f"{type(error).__name__}: {_one_line(error)}"}
        future.release()
        yield job, outcome
        for new in submit_next(1):
            completed.add(new)


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None, threads: int = 1):
    """A Dask client: on a running scheduler, or on a new LocalCluster of ``workers``
    single-threaded processes (closed on exit)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise TriDFTError("Dask is needed for parallel labelling: pip install "
                          "'tridft[label]' (or label in one process with --workers 0)") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise TriDFTError(f"cannot connect to the Dask scheduler at {scheduler}: "
                              f"{_one_line(error)}") from None
        try:
            yield client
        finally:
            client.close()
        return
    # One BLAS/OpenMP thread per worker process: more oversubscribes the cores.
    env = {name: str(threads) for name in
           ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    with _quiet_dask(), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, scheduler_kwargs={"dashboard": False},
                         silence_logs=logging.ERROR, env=env) as cluster, \
            Client(cluster) as client:
        yield client


@contextlib.contextmanager
def _quiet_dask():
    """Keep Dask's INFO chatter (and its shutdown races, logged with tracebacks) out of
    the user's terminal while our cluster lives; errors still show."""
    dask_logger = logging.getLogger("distributed")
    previous = dask_logger.level
    dask_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        dask_logger.setLevel(previous)


def default_workers() -> int:
    """Cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- the whole run

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
