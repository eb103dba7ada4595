"""Where the jobs run: in this process one after the other, or on a Dask cluster.

Both executors yield ``(job, outcome)`` pairs as the jobs finish, where ``outcome``
is what :func:`tridft.label.jobs.label_job` returns. :func:`dask_client` gives a
client on a running scheduler or on a new LocalCluster of single-threaded processes
(one per core is the fastest setup for small molecules: BLAS and OpenMP threads in
one process oversubscribe).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator, Sequence

from tridft.errors import TriDFTError
from tridft.label.jobs import Job, one_line, label_job
from tridft.label.pyscf_backend import LabelSettings, warm_up

logger = logging.getLogger(__name__)


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
        raise TriDFTError(f"the Dask workers cannot label: {one_line(error)} (install "
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
            outcome = {"ok": False, "reason": f"{type(error).__name__}: {one_line(error)}"}
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
                              f"{one_line(error)}") from None
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
