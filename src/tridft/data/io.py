"""Files (or ase.Atoms) -> validated Records in internal units.

This is the one place where labels are found in what ASE hands back and converted
from the file's units::

    records = read_structures("water.xyz",
                              keys=parse_keys("energy=potential,dipole=mu,polarizability=alpha"),
                              units=parse_units("energy=Hartree,polarizability=bohr^3,dipole=e*bohr"))

Where labels live: ASE's extxyz reader moves ``energy``, ``forces``, ``dipole`` (and a
few other names) into a SinglePointCalculator; other keys stay in ``atoms.info``
(per structure) or ``atoms.arrays`` (per atom). A label is looked up in all three.
A label that is absent is ``None`` in the Record, never zero.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence, Union

import ase
import ase.io
import numpy as np
from ase.data import chemical_symbols

from tridft.data import validate
from tridft.data.record import Record
from tridft.data.validate import Where
from tridft.errors import ConfigError, InputError
from tridft.units import UnitSpec, UnknownUnitError

BUNDLED_DATASET = "ethanol_pbe_def2svp_800.extxyz"
# arrays every Atoms has; never labels.
_GEOMETRY_ARRAYS = ("numbers", "positions")
# Per-atom properties that ASE's extxyz reader moves from the arrays into calculator results.
_PER_ATOM_RESULTS = ("energies", "charges", "magmoms", "stresses", "forces")

Source = Union[str, os.PathLike, ase.Atoms, Sequence[ase.Atoms]]


@dataclass(frozen=True)
class KeyMap:
    """Names of the labels in the file. ``None`` means: do not read that label.

    ``extra`` maps a further label's name in tridft to its key in the file; such
    labels are read as they are, without unit conversion, into ``Record.extra``
    (per structure) or ``Record.atom_extra`` (per atom, found in ``atoms.arrays``).
    """

    energy: str | None = "energy"
    forces: str | None = "forces"
    polarizability: str | None = "polarizability"
    dipole: str | None = "dipole"
    extra: dict[str, str] = field(default_factory=dict)


def bundled_dataset_path() -> Path:
    """Path of the dataset shipped with tridft (800 ethanol, PBE/def2-SVP; eV, Angstrom, A^3)."""
    path = Path(str(importlib.resources.files("tridft").joinpath("datasets", BUNDLED_DATASET)))
    if not path.is_file():
        raise InputError("the bundled dataset is missing from this installation", path=str(path))
    return path


def read_structures(source: Source, keys: KeyMap | None = None,
                    units: UnitSpec | None = None) -> list[Record]:
    """Read and validate every structure of ``source``; labels converted to internal units.

    source: a file ase.io.read understands (extxyz, ASE .db, ...), an ase.Atoms,
            or a list of them.
    keys:   where the labels are (default: energy, forces, polarizability, dipole).
    units:  the units of the file (default: the internal units).

    Raises InputError (file, structure, field) on bad data and ConfigError on an
    unknown unit.
    """
    keys = keys or KeyMap()
    units = units or UnitSpec()
    try:
        units.validate()
    except UnknownUnitError as error:
        raise ConfigError(f"units: {error}") from None

    path, frames = _frames(source)
    records = []
    for index, atoms in enumerate(frames):
        where = Where(path, index)
        record = atoms_to_record(atoms, keys, units, where)
        validate.check_record(record, where)
        records.append(record)
    if not records:
        raise InputError("no structures found", path=path)
    validate.symmetrize_polarizabilities(records, path)
    return records


def atoms_to_record(atoms: ase.Atoms, keys: KeyMap, units: UnitSpec, where: Where) -> Record:
    """One Atoms -> one Record in internal units (shapes checked, not yet validated)."""
    n_atoms = len(atoms)
    length = units.length_factor
    cell, pbc = _cell_and_pbc(atoms)
    record = Record(
        numbers=np.asarray(atoms.numbers, dtype=np.int64).copy(),
        positions=np.array(atoms.positions, dtype=np.float64) * length,
        cell=None if cell is None else cell * length,
        pbc=pbc,
        source=where.source,
    )
    value = _find(atoms, keys.energy)
    if value is not None:
        record.energy = validate.as_energy(value, where) * units.energy_factor
    value = _find(atoms, keys.forces)
    if value is not None:
        record.forces = validate.as_forces(value, n_atoms, where) * units.force_factor
    value = _find(atoms, keys.polarizability)
    if value is not None:
        record.polarizability = validate.as_polarizability(value, where) \
            * units.polarizability_factor
    value = _find(atoms, keys.dipole)
    if value is not None:
        record.dipole = validate.as_dipole(value, where) * units.dipole_factor
    for name, key in keys.extra.items():
        _read_extra(atoms, name, key, record, where)
    return record


def _cell_and_pbc(atoms: ase.Atoms) -> tuple[np.ndarray | None, np.ndarray]:
    """(cell (3, 3) in file units or None, pbc (3,) bool); a molecule has no cell.

    ASE sets pbc to True whenever an extxyz frame has a Lattice, so an all-zero
    Lattice (a common way of writing "no cell") also means a molecule.
    """
    cell = np.array(atoms.cell, dtype=np.float64)
    pbc = np.array(atoms.pbc, dtype=bool)
    if not pbc.any() or not cell.any():
        return None, np.zeros(3, dtype=bool)
    return cell, pbc


def _find(atoms: ase.Atoms, key: str | None):
    """The value stored under ``key`` in info, arrays or calculator results; None if absent."""
    if key is None:
        return None
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays and key not in _GEOMETRY_ARRAYS:
        return atoms.arrays[key]
    results = getattr(atoms.calc, "results", None) or {}
    return results.get(key)


def _read_extra(atoms: ase.Atoms, name: str, key: str, record: Record, where: Where) -> None:
    value = _find(atoms, key)
    if value is None:
        return
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise where.error(f"expected numbers, got {value!r:.40}", name) from None
    per_atom = key in atoms.arrays or (key not in atoms.info and key in _PER_ATOM_RESULTS)
    (record.atom_extra if per_atom else record.extra)[name] = array


# --- reading files, with ASE's exceptions turned into InputError ---------------------------


def _frames(source: Source) -> tuple[str, Iterator[ase.Atoms]]:
    """(name for messages, iterator over the Atoms of ``source``)."""
    if isinstance(source, ase.Atoms):
        return "<atoms>", iter([source])
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return str(path), _read_file(path)
    if isinstance(source, Sequence) and all(isinstance(a, ase.Atoms) for a in source):
        return "<atoms>", iter(source)
    raise InputError(f"cannot read structures from a {type(source).__name__} "
                     "(expected a file path or ase.Atoms)")


def _read_file(path: Path) -> Iterator[ase.Atoms]:
    if not path.exists():
        raise InputError("no such file", path=str(path))
    if path.is_dir():
        raise InputError("is a directory, not a structure file", path=str(path))
    if _is_ase_database(path):
        yield from _read_database(path)
        return
    if _is_xyz(path):
        check_atom_counts(path)
    # iread is lazy: ASE's exceptions (including "unknown format") come from next().
    frames = ase.io.iread(str(path), index=":", parallel=False, do_not_split_by_at_sign=True)
    index = 0
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - any failure of ASE means a bad file
            raise _read_error(error, path, index) from error
        yield atoms
        index += 1


# The shortest line that can describe an atom: "H 0 0 0".
_SHORTEST_ATOM_LINE = 7


def _is_xyz(path: Path) -> bool:
    return path.suffix.lower() in (".xyz", ".extxyz") or _ase_filetype(path) in ("xyz", "extxyz")


def check_atom_counts(path: Path) -> int:
    """Compare every frame's claimed atom count with what is left of the file; how many
    frames. ASE would otherwise read (or allocate) for a count like 999999999 for hours.

    Only the count lines are parsed; anything else is ASE's to judge.
    """
    size = path.stat().st_size
    frames = 0
    with open(path, "rb") as stream:
        while True:
            line = stream.readline()
            if not line:
                return frames
            if not line.strip():
                continue
            try:
                count = int(line)
            except ValueError:
                return frames  # not a count: ASE reports what is wrong
            left = size - stream.tell()
            if count < 0 or count * _SHORTEST_ATOM_LINE > left + 1:
                raise InputError(f"the frame claims {count} atoms, but only {left} bytes "
                                 f"follow (an atom line takes at least {_SHORTEST_ATOM_LINE}): "
                                 "a wrong atom count, or a truncated file", path=str(path),
                                 index=frames, field="atom count")
            for _ in range(count + 1):  # the comment line and the atom lines
                if not stream.readline():
                    return frames
            frames += 1


def _read_error(error: Exception, path: Path, index: int) -> InputError:
    """A one-line InputError for an exception ASE raised while reading structure ``index``."""
    symbol = error.args[0] if isinstance(error, KeyError) and error.args else None
    if isinstance(symbol, str) and symbol not in chemical_symbols and len(symbol) <= 3:
        # ASE looks the species column up in a symbol table: a KeyError names the symbol.
        return InputError(f"unknown element symbol '{symbol}'", path=str(path), index=index,
                          field="species")
    from ase.io.formats import UnknownFileTypeError

    if isinstance(error, UnknownFileTypeError):
        return InputError(f"cannot read: {_describe(error)}", path=str(path))
    return InputError(f"cannot read (truncated or malformed?): {_describe(error)}",
                      path=str(path), index=index)


def _describe(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    text = text.replace("ase.io.extxyz: ", "")
    return " ".join(text.split())  # one line


def _is_ase_database(path: Path) -> bool:
    return path.suffix.lower() in (".db", ".json") and _ase_filetype(path) in ("db", "json")


def _ase_filetype(path: Path) -> str | None:
    from ase.io.formats import filetype

    try:
        return filetype(str(path))
    except Exception:  # noqa: BLE001 - not recognisable: let ase.io.iread report it
        return None


def _read_database(path: Path) -> Iterator[ase.Atoms]:
    """Rows of an ASE database, with key-value pairs and data merged into ``atoms.info``.

    ase.io.read drops both, but that is where users keep polarizabilities and the like.
    """
    from ase.db import connect

    try:
        rows = list(connect(str(path)).select())
    except Exception as error:  # noqa: BLE001
        raise InputError(f"cannot read database: {_describe(error)}", path=str(path)) from error
    for row in rows:
        atoms = row.toatoms()
        atoms.info.update(row.get("key_value_pairs", {}))
        atoms.info.update(row.get("data", {}))
        yield atoms
