"""The output file of a labelling run: scan it, truncate a cut-short frame, append durably.

* each frame is formatted in memory (:func:`frame_text`), then appended with one
  ``write`` followed by ``flush`` and ``os.fsync`` (:class:`AppendLog`), so at most
  the last frame can be cut short;
* :func:`prepare_output` finds a cut-short last frame, drops it (truncating the file
  back to its last complete frame) and returns the ``label_key`` of every complete one;
* failures go to ``OUT.failures.jsonl`` (:func:`failures_path`), never to the output.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path

import numpy as np

from tridft.label.jobs import Job

logger = logging.getLogger(__name__)

_KEY_PATTERN = re.compile(rb"\blabel_key=\"?([0-9a-f]{64})")


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
