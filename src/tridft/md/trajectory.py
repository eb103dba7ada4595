"""Crash-safe extxyz trajectories: append whole frames, read back every complete one.

A frame is formatted in memory and appended with a single unbuffered ``write``
(there is no Python-side buffer to flush), so a run that is killed leaves a file
whose frames are all complete except, at worst, the last one; ``read_trajectory``
drops such a truncated last frame (with a warning) and reads the rest.

What the kernel has been handed survives the death of the process; ``fsync`` only
matters if the whole machine goes down. It costs about 7 ms per call on a
loaded 2-core machine -- more than an MD step of a small molecule -- so by default
the writer calls it at most once a second (and on close): a power cut loses at
most the last second of frames, a killed run loses nothing that was written.
``sync_interval_s=0`` syncs every frame.

Keys follow the project's extxyz conventions, in internal units: ``energy`` (eV),
``forces`` (eV/Angstrom, per atom), ``polarizability`` (9 numbers, Angstrom^3,
row-major), ``dipole`` (3 numbers, e*Angstrom), plus MD bookkeeping such as
``time_fs``, ``kinetic_energy`` and ``total_energy`` (eV) and ``temperature_K``.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import ase
import ase.io
import numpy as np

from tridft.errors import InputError, TriDFTError

logger = logging.getLogger(__name__)


class TrajectoryWriter:
    """Appends frames to an extxyz file; each frame is on disk when ``write`` returns.

    >>> import tempfile, ase
    >>> path = tempfile.mkdtemp() + "/traj.extxyz"
    >>> with TrajectoryWriter(path) as writer:
    ...     writer.write(ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]]),
    ...                  info={"time_fs": 0.0, "energy": -1.0})
    >>> len(read_trajectory(path))
    1
    """

    def __init__(self, path: str | os.PathLike, append: bool = False,
                 sync_interval_s: float = 1.0):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as error:
            raise TriDFTError(f"{self.path}: cannot write ({error.strerror or error})") from None
        self.sync_interval_s = sync_interval_s
        self._last_sync = time.monotonic()
        self.frames_written = 0

    def write(self, atoms: ase.Atoms, info: dict | None = None,
              arrays: dict[str, np.ndarray] | None = None) -> None:
        """Append one frame: the geometry of ``atoms`` with ``info`` and per-atom ``arrays``."""
        if self._fd is None:
            raise ValueError(f"{self.path}: the trajectory writer is closed")
        frame = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions,
                          cell=atoms.cell, pbc=atoms.pbc)
        for key, value in (info or {}).items():
            frame.info[key] = _plain(value)
        for key, value in (arrays or {}).items():
            frame.arrays[key] = np.asarray(value, dtype=np.float64)
        text = io.StringIO()
        ase.io.write(text, frame, format="extxyz")
        data = text.getvalue().encode()
        written = 0
        try:
            while written < len(data):  # os.write may write less than asked (signals, pipes)
                written += os.write(self._fd, data[written:])
        except OSError as error:  # the disk is full, ...: the frames before stay whole
            raise TriDFTError(f"{self.path}: cannot write frame {self.frames_written} "
                              f"({error.strerror or error})") from None
        self.frames_written += 1
        if time.monotonic() - self._last_sync >= self.sync_interval_s:
            self.sync()

    def sync(self) -> None:
        """Make every frame written so far durable (fsync)."""
        if self._fd is not None:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "TrajectoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain(value):
    """Numbers and flat float arrays: what an extxyz comment line can hold."""
    if isinstance(value, (int, float, str, bool, np.integer, np.floating)):
        return value
    return np.asarray(value, dtype=np.float64).reshape(-1)


def read_trajectory(path: str | os.PathLike) -> list[ase.Atoms]:
    """Every complete frame of an extxyz trajectory; a truncated last frame is dropped.

    Raises InputError for a missing file, an empty one, or a damaged frame that is
    not the last.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    text = path.read_bytes().decode(errors="replace")
    complete, n_frames, dropped = _complete_frames(text, str(path))
    if dropped:
        logger.warning("%s: dropped a truncated last frame (%d complete frames kept)",
                       path, n_frames)
    if n_frames == 0:
        raise InputError("no complete frame in the trajectory", path=str(path))
    try:
        return ase.io.read(io.StringIO(complete), index=":", format="extxyz")
    except Exception as error:  # noqa: BLE001 - any failure of ASE means a damaged file
        raise InputError(f"cannot read the trajectory: {' '.join(str(error).split())}",
                         path=str(path)) from error


def _complete_frames(text: str, path: str) -> tuple[str, int, bool]:
    """(the text of the complete frames, how many, whether a partial last frame was dropped)."""
    lines = text.splitlines(keepends=True)
    position = 0  # line index of the current frame's atom-count line
    n_frames = 0
    while position < len(lines):
        count_line = lines[position]
        if not count_line.strip():
            position += 1  # blank lines between frames are harmless
            continue
        try:
            n_atoms = int(count_line)
        except ValueError:
            if position == len(lines) - 1 and not count_line.endswith("\n"):
                return "".join(lines[:position]), n_frames, True
            raise InputError(f"frame {n_frames}: expected an atom count, got "
                             f"'{count_line.strip()[:40]}'", path=path) from None
        end = position + 2 + n_atoms  # one past the frame's last line
        if end > len(lines) or not lines[end - 1].endswith("\n"):
            return "".join(lines[:position]), n_frames, True
        position = end
        n_frames += 1
    return "".join(lines[:position]), n_frames, False


def frame_value(atoms: ase.Atoms, key: str):
    """The value stored under ``key`` in info, arrays or calculator results (None if absent).

    ASE's extxyz reader moves ``energy``, ``forces`` and ``dipole`` into a
    SinglePointCalculator; every other key stays in ``info`` or ``arrays``.
    """
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays and key not in ("numbers", "positions"):
        return atoms.arrays[key]
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def series(frames: list[ase.Atoms], key: str, shape: tuple[int, ...] | None = None,
           path: str = "trajectory") -> np.ndarray:
    """(T, *shape) the value of ``key`` in every frame; InputError if a frame lacks it
    or holds a NaN or infinity there."""
    values = []
    for index, atoms in enumerate(frames):
        value = frame_value(atoms, key)
        if value is None:
            raise InputError(f"frame has no '{key}'", path=path, index=index, field=key)
        array = np.asarray(value, dtype=np.float64)
        if shape is not None:
            array = array.reshape(shape)
        if not np.all(np.isfinite(array)):
            bad = "NaN" if np.isnan(array).any() else "an infinite value"
            raise InputError(f"{bad} in the frame: the dynamics blew up there; only the "
                             f"frames before it can be used", path=path, index=index,
                             field=key)
        values.append(array)
    return np.stack(values)


def has_key(frames: list[ase.Atoms], key: str) -> bool:
    """Whether every frame carries ``key``."""
    return bool(frames) and all(frame_value(atoms, key) is not None for atoms in frames)
