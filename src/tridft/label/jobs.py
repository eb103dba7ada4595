"""What to label: one :class:`Job` per structure, its ``label_key``, and labelling one job.

A job's ``label_key`` is a sha256 of the atomic numbers, rounded positions, charge,
multiplicity and the settings that change the numbers: the identity by which the
runner (:mod:`tridft.label.runner`) knows a structure is already in its output.
:func:`label_job` is what a worker runs; it never raises, failures come back as data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from tridft.errors import InputError, TriDFTError
from tridft.label.pyscf_backend import (LabelSettings, check_functional, check_structure,
                                        label_structure)

logger = logging.getLogger(__name__)

# Positions are hashed after rounding to this many decimals (Angstrom): well below any
# physical difference, well above the noise of writing and re-reading a file.
KEY_DECIMALS = 6


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
        return {"ok": False, "reason": f"{type(error).__name__}: {one_line(error)}"}


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
