"""The run folder: one trainer at a time, and no file of someone else's lost.

    check_run_dir(run_dir, resume=False, overwrite=False)   # before reading any data
    with RunDirLock(run_dir):                               # while the run writes
        ...

``RunDirLock`` is an exclusive ``flock`` on ``run_dir/.tridft.lock``, which also holds
the process id, host and start time of its owner for the message another trainer
gets. The lock belongs to the process: the kernel drops it when the process ends,
however it ends, so a lock file left by a killed run is stale and taken over (where
``flock`` is not supported, staleness is decided by the process id).

``check_run_dir`` refuses a fresh run in a folder that already holds run files
(model.pt, checkpoint.pt, metrics.csv, ...) unless told to overwrite them: a fresh
run replaces those files, and they may be another run's, or the user's.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from pathlib import Path

from tridft.errors import TriDFTError
from tridft.files import pid_alive
from tridft.outputs import check_output_folder

logger = logging.getLogger(__name__)

LOCK_NAME = ".tridft.lock"
# What a run writes into its folder; a fresh run replaces them.
RUN_FILES = ("checkpoint.pt", "model.pt", "metrics.csv", "validation.csv",
             "test_metrics.json", "split.json", "stats.json", "config.yaml")


def existing_run_files(run_dir: str | os.PathLike) -> list[str]:
    """The names of RUN_FILES present in ``run_dir``."""
    folder = Path(run_dir)
    return [name for name in RUN_FILES if (folder / name).exists()]


def check_run_dir(run_dir: str | os.PathLike, resume: bool, overwrite: bool,
                  locked: bool = False) -> None:
    """TriDFTError (one line) when ``run_dir`` cannot be used as asked; writes nothing.

    resume:    the run continues run_dir/checkpoint.pt (its files are the run's own).
    overwrite: a fresh run may replace the run files already in the folder.
    locked:    this process holds the folder's lock (the check after taking it).
    """
    folder = Path(run_dir) if str(run_dir) else Path(".")
    check_output_folder(folder, "run_dir")
    held_by = "" if locked else lock_holder(folder)
    if held_by:
        raise TriDFTError(f"run_dir {folder}: in use by another training ({held_by}); wait "
                          f"for it to finish or choose another run_dir")
    if resume and (folder / "checkpoint.pt").is_file():
        return
    found = existing_run_files(folder)
    if found and not overwrite:
        where = "the current folder" if folder.resolve() == Path.cwd() else str(folder)
        raise TriDFTError(f"run_dir {where} already holds {', '.join(found)}: continue that "
                          f"run with --resume, choose another run_dir, or replace them "
                          f"with --overwrite")
    if found and locked:
        logger.warning("%s: replacing the files of an earlier run (%s)", folder, ", ".join(found))


def lock_holder(folder: Path) -> str:
    """'process 123 on host since ...' when a live process holds the lock of ``folder``."""
    path = folder / LOCK_NAME
    if not path.is_file():
        return ""
    try:
        handle = os.open(path, os.O_RDWR)
    except OSError:
        return ""
    try:
        if _try_flock(handle) is False:
            return _describe(path)
        return ""  # nobody holds it (the flock is dropped with the handle)
    finally:
        os.close(handle)


class RunDirLock:
    """Exclusive lock of a run folder for this process (creates the folder)."""

    def __init__(self, run_dir: str | os.PathLike):
        folder = Path(run_dir) if str(run_dir) else Path(".")
        self.path = folder / LOCK_NAME
        self._handle: int | None = None

    def acquire(self) -> "RunDirLock":
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TriDFTError(f"run_dir {folder}: cannot create it "
                              f"({error.strerror or error})") from None
        for _ in range(5):  # another process may remove the file between open and flock
            handle = self._open()
            locked = _try_flock(handle)
            if locked is False:
                os.close(handle)
                raise TriDFTError(f"run_dir {folder}: in use by another training "
                                  f"({_describe(self.path)}); wait for it to finish or "
                                  f"choose another run_dir")
            if locked is None:  # no flock on this file system: trust the process id
                owner = _owner_pid(self.path)
                if owner and owner != os.getpid() and pid_alive(owner):
                    os.close(handle)
                    raise TriDFTError(f"run_dir {folder}: in use by another training "
                                      f"({_describe(self.path)})")
            if _same_inode(handle, self.path):
                break
            os.close(handle)
        else:
            raise TriDFTError(f"run_dir {folder}: could not take its lock {self.path}")
        if _owner_pid(self.path) not in (0, os.getpid()):
            logger.info("%s: took over the lock left by process %d, which has ended",
                        folder, _owner_pid(self.path))
        text = f"pid {os.getpid()}\nhost {socket.gethostname()}\nsince {time.ctime()}\n"
        os.ftruncate(handle, 0)
        os.pwrite(handle, text.encode(), 0)
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            if _same_inode(self._handle, self.path):
                self.path.unlink()
        except OSError:
            pass
        os.close(self._handle)  # drops the flock
        self._handle = None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise TriDFTError(f"run_dir {self.path.parent}: cannot write in it "
                              f"({error.strerror or error})") from None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_flock(handle: int) -> bool | None:
    """True: locked; False: someone else holds it; None: flock unsupported here."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _same_inode(handle: int, path: Path) -> bool:
    try:
        opened, current = os.fstat(handle), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def _owner_pid(path: Path) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("pid "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _describe(path: Path) -> str:
    try:
        fields = dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    except OSError:
        return "owner unknown"
    if "pid" not in fields:
        return "owner unknown"
    return (f"process {fields['pid']} on {fields.get('host', '?')}"
            + (f" since {fields['since']}" if "since" in fields else ""))
