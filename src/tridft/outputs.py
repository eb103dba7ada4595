"""Output paths checked against input paths before anything is written.

    check_outputs(outputs={"-o": args.output}, inputs={"MODEL": args.model, "DATA": args.data})

Every command calls this before it reads or computes anything, so that a mistake costs
nothing and loses nothing. A TriDFTError (one line) when an output

- is the same file as an input: the same inode (hard links, symlinks, ``./a`` and ``a``),
  or, when the output does not exist yet, the same resolved path;
- is an existing folder (for a file output), an existing file (for a folder output), or
  something else than a regular file (a device, a pipe);
- has a name the file system refuses (too long);
- cannot be written: its folder, or the nearest one that exists, refuses a new file
  (permission, read-only file system) or is a file.

Folders are not created here: a command that fails later leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Mapping, Union

from tridft.errors import TriDFTError

PathLike = Union[str, os.PathLike]
NAME_MAX = 255  # bytes of one file name (Linux, macOS)
PATH_MAX = 4096  # bytes of a whole path (Linux)


def check_outputs(outputs: Mapping[str, PathLike | None],
                  inputs: Mapping[str, PathLike | None] | None = None,
                  folders: Mapping[str, PathLike | None] | None = None) -> None:
    """Refuse ``outputs`` (files) and ``folders`` (output folders) that would harm ``inputs``.

    Each mapping goes from the name the user knows (``-o``, ``--json``, ``MODEL``) to a
    path; None entries are skipped. Inputs inside an output folder are not checked
    here (see ``check_not_inside``).
    """
    inputs = {name: path for name, path in (inputs or {}).items() if path is not None}
    for name, path in (outputs or {}).items():
        if path is not None:
            check_output_file(path, name)
            _check_against_inputs(path, name, inputs)
    for name, path in (folders or {}).items():
        if path is not None:
            check_output_folder(path, name)
            _check_against_inputs(path, name, inputs)


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode, or the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def check_output_file(path: PathLike, name: str = "output") -> None:
    """TriDFTError unless ``path`` can become a regular file written by tridft."""
    path = Path(path)
    _check_name(path, name)
    if path.is_dir():
        raise TriDFTError(f"{name} {path}: is a folder; give a file name")
    if path.exists() and not path.is_file():
        raise TriDFTError(f"{name} {path}: exists and is not a regular file")
    check_writable_folder(path.parent, name)


def check_output_folder(path: PathLike, name: str = "output folder") -> None:
    """TriDFTError unless ``path`` is, or can become, a folder tridft writes into."""
    path = Path(path)
    _check_name(path, name)
    if path.exists() and not path.is_dir():
        raise TriDFTError(f"{name} {path}: exists and is not a folder")
    check_writable_folder(path, name)


def check_writable_folder(folder: PathLike, name: str = "output") -> None:
    """TriDFTError unless a new file can be made in ``folder`` (or in the nearest existing
    folder above it, which the write would create its way down from).

    Tries it: a temporary file is made and removed (``os.access`` does not know about
    read-only file systems for every user, nor about root).
    """
    folder = Path(folder) if str(folder) else Path(".")
    existing = folder
    while not existing.exists():
        if existing.is_symlink():  # a dangling link: the write would fail
            raise TriDFTError(f"{name}: {existing} is a broken symbolic link")
        parent = existing.parent
        if parent == existing:
            break
        existing = parent
    if not existing.is_dir():
        raise TriDFTError(f"{name}: {existing} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".tridft-write-test.")
    except OSError as error:
        raise TriDFTError(f"{name}: cannot write in {existing} "
                          f"({error.strerror or error})") from None
    os.close(handle)
    os.unlink(probe)


def check_not_inside(folder: PathLike, names: list[str], inputs: Mapping[str, PathLike | None],
                     folder_name: str = "run_dir") -> None:
    """TriDFTError when an input is one of the files ``names`` of ``folder`` that a run
    writes or replaces."""
    for name in names:
        target = Path(folder) / name
        for input_name, path in inputs.items():
            if path is not None and same_file(target, path):
                raise TriDFTError(f"{input_name} {path} is {target}, which the run writes; "
                                  f"choose another {folder_name} or move the file")


def _check_against_inputs(path: PathLike, name: str, inputs: Mapping[str, PathLike]) -> None:
    for input_name, input_path in inputs.items():
        if same_file(path, input_path):
            raise TriDFTError(f"{name} {path} is the input {input_name} {input_path}: writing "
                              f"it would destroy the input; choose another name")


def _check_name(path: Path, name: str) -> None:
    """Names the file system refuses (too long, NUL) as one line."""
    if "\0" in str(path):
        raise TriDFTError(f"{name}: the path contains a NUL character")
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > NAME_MAX:
        raise TriDFTError(f"{name}: a name in the path is too long for the file system "
                          f"({longest} bytes, at most {NAME_MAX}); use a shorter one")
    if len(os.fsencode(str(path))) > PATH_MAX:
        raise TriDFTError(f"{name}: the path is too long for the file system "
                          f"({len(os.fsencode(str(path)))} bytes, at most {PATH_MAX}); "
                          "use a shorter one")
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            raise TriDFTError(f"{name}: the path is too long for the file system "
                              f"({len(str(path))} characters); use a shorter one") from None
        if error.errno not in (errno.ENOTDIR, errno.EACCES, errno.ELOOP):
            raise TriDFTError(f"{name} {path}: {error.strerror or error}") from None
        if error.errno == errno.ENOTDIR:
            raise TriDFTError(f"{name} {path}: a part of the path is a file, "
                              f"not a folder") from None
        if error.errno == errno.ELOOP:
            raise TriDFTError(f"{name} {path}: too many symbolic links") from None
