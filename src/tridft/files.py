"""Writing files so that nothing ever sees half of one: a temporary file, then a rename.

    with atomic_output("report.md") as temporary:
        temporary.write_text(text)
    # report.md is either the old file or the whole new one, never a part

The temporary file lives in the same folder, so ``os.replace`` is an atomic rename
on the same file system. Its name carries the writer's process id
(``.report.md.<pid>.<random>.tmp``): a write that was killed outright leaves it behind,
and the next write of the same file removes it once that process is gone. A failure of
the file system (disk full, read-only, permission, name too long) is one TriDFTError
naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tridft.errors import TriDFTError


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed to ``path`` if the block succeeds.

    The folder of ``path`` is created if needed. If the block raises, the temporary
    file is removed and ``path`` is left as it was; an OSError of the block (the disk
    is full, ...) becomes a TriDFTError naming ``path``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise TriDFTError(f"{path}: is a folder, not a file")
        if path.exists() and not path.is_file():
            raise TriDFTError(f"{path}: exists and is not a regular file")
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                        suffix=".tmp")
    except OSError as error:
        raise write_error(path, error) from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, _new_file_mode())  # mkstemp makes it private (0600)
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        if temporary.exists():
            temporary.unlink()


def write_error(path: str | os.PathLike, error: OSError) -> TriDFTError:
    """'PATH: cannot write (No space left on device)': one line for a failed write."""
    reason = error.strerror or str(error) or type(error).__name__
    hint = _HINTS.get(error.errno, "")
    return TriDFTError(f"{path}: cannot write ({reason}){hint}")


_HINTS = {errno.ENOSPC: ": free some space or write elsewhere",
          errno.EDQUOT: ": over the disk quota",
          errno.EROFS: ": the file system is read-only",
          errno.ENAMETOOLONG: ": use a shorter name"}


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True


def remove_stale_temporaries(path: Path) -> int:
    """Remove temporaries of ``path`` left by writers that were killed; how many."""
    removed = 0
    try:
        candidates = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
    except OSError:
        return 0
    for candidate in candidates:
        pid_text = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            try:
                candidate.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _new_file_mode() -> int:
    """The mode open() gives a new file: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
