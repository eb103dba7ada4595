"""Per-element reference energies, and the compositions whose energies they determine.

The energy head adds sum_Z n_Z e_Z (n_Z atoms of element Z) to the learned,
size-extensive part of the energy. The references e_Z come from one of two places:

- ``fitted`` (the default): least squares E_s ~ sum_Z n_sZ e_Z over the training
  structures with an energy. Only what the compositions determine is fitted. With
  C the (structures x elements) matrix of element counts, the energy of a
  composition n is determined when n lies in the row space of C: then sum_Z n_Z e_Z
  is the same for every least-squares solution. An element's own reference is
  determined when its unit vector does. The references of the other elements are
  not determined by the data (a set of one formula, C2H6O, determines only
  2 e_C + 6 e_H + e_O); they are chosen as close to one common value as the
  data allows (for one formula: the mean energy per atom, for every element), so
  that no element gets an arbitrary -600 eV. The energy of a composition outside
  the row space (methanol, CH4O, for a model of ethanol) is refused.
- ``isolated_atoms``: the energies of the isolated atoms, given in the
  configuration (``data.reference_energies: {H: -13.6, C: -1029.0, ...}``, eV,
  computed with the same method as the labels). The learned part is then the
  atomisation energy, and the energy of every composition of these elements is
  predicted.

The compositions a model supports are plain data, saved with its energy head
(``EnergyHead.options["reference_support"]``)::

    energies, support = fit_references(train_records)
    check_energy_support(support, records, "evaluate")   # InputError for methanol
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import yaml
from ase.data import atomic_numbers, chemical_symbols
from ase.formula import Formula

from tridft.data.record import Record
from tridft.errors import ConfigError, InputError

FITTED = "fitted"
ISOLATED_ATOMS = "isolated_atoms"
# Relative size of a singular value (to the largest) below which it counts as zero.
RANK_TOLERANCE = 1e-9
# Relative distance of a composition from the fitted row space that still counts as in it.
SUPPORT_TOLERANCE = 1e-6
# Training formulas named in a refusal.
_NAMED_FORMULAS = 4


def formula(numbers: Sequence[int]) -> str:
    """Hill formula of a structure: ``formula([6, 1, 1, 1, 1, 8])`` -> ``'CH4O'``."""
    return Formula.from_list([chemical_symbols[int(z)] for z in numbers]).format("hill")


def _counts(records: Sequence[Record], elements: list[int]) -> np.ndarray:
    """(structures, elements) atom counts."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(records), len(elements)))
    for s, record in enumerate(records):
        for z, n in zip(*np.unique(record.numbers, return_counts=True)):
            counts[s, column[int(z)]] = n
    return counts


def fit_references(records: Sequence[Record]) -> tuple[dict[int, float], dict]:
    """({Z: eV}, support) fitted on ``records`` (those with an energy), as the module says.

    support: {"source": "fitted", "elements": [Z, ...], "basis": orthonormal rows over
    ``elements`` spanning the compositions whose energy is determined (None: all of
    them), "undetermined": [Z whose own reference is not determined],
    "formulas": [training formulas, at most a few], "n_formulas": how many}.
    """
    records = [r for r in records if r.energy is not None]
    if not records:
        return {}, {}
    elements = sorted({int(z) for r in records for z in r.numbers})
    counts = _counts(records, elements)  # (S, K)
    energies = np.array([float(r.energy) for r in records])  # (S,) eV
    _, singular, vt = np.linalg.svd(counts, full_matrices=True)
    rank = int(np.sum(singular > RANK_TOLERANCE * singular[0]))
    row_space, null_space = vt[:rank], vt[rank:]  # (r, K), (K - r, K)
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)  # the minimum-norm one
    free = np.linalg.norm(null_space, axis=0) > np.sqrt(RANK_TOLERANCE)  # (K,) undetermined
    if free.any():
        # Move along the null space (no change to any fitted energy) to bring the free
        # references as close to their common mean as possible.
        centre = np.eye(int(free.sum())) - 1.0 / free.sum()
        step, *_ = np.linalg.lstsq(centre @ null_space[:, free].T,
                                   -centre @ solution[free], rcond=None)
        solution = solution + null_space.T @ step
    names = sorted({formula(r.numbers) for r in records})
    support = {"source": FITTED, "elements": elements,
               "basis": None if rank == len(elements) else row_space.tolist(),
               "undetermined": [z for z, f in zip(elements, free) if f],
               "formulas": names[:_NAMED_FORMULAS], "n_formulas": len(names)}
    return {z: float(e) for z, e in zip(elements, solution)}, support


def isolated_atom_references(energies: Mapping, elements: Sequence[int]) -> tuple[dict, dict]:
    """({Z: eV}, support) from isolated-atom energies ``{symbol or Z: eV}``; every
    element of ``elements`` (those of the training structures) must have one."""
    references = {atomic_number(key, "data.reference_energies"): float(value)
                  for key, value in energies.items()}
    missing = [chemical_symbols[int(z)] for z in elements if int(z) not in references]
    if missing:
        raise ConfigError(f"data.reference_energies: no energy for {', '.join(missing)} "
                          f"(the training structures hold "
                          f"{', '.join(chemical_symbols[int(z)] for z in elements)})")
    support = {"source": ISOLATED_ATOMS, "elements": sorted(references), "basis": None,
               "undetermined": [], "formulas": [], "n_formulas": 0}
    return references, support


def read_reference_energies(path: str | os.PathLike) -> dict[str, float]:
    """{symbol: eV} from a YAML or JSON mapping (as ``tridft label --isolated-atoms``
    writes it); InputError naming the file."""
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise InputError(f"{os.fspath(path)}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise InputError(f"{os.fspath(path)}: not YAML or JSON ({error})") from None
    if isinstance(data, dict) and isinstance(data.get("reference_energies"), dict):
        data = data["reference_energies"]
    if not isinstance(data, dict) or not data:
        raise InputError(f"{os.fspath(path)}: expected a mapping element symbol -> energy "
                         f"in eV, e.g. 'H: -13.6'")
    energies = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{os.fspath(path)}: {key}: the energy must be a number (eV), "
                             f"got {value!r}")
        energies[str(key)] = float(value)
    return energies


def atomic_number(key, option: str) -> int:
    """Z of an element given by its symbol ('H') or number (1, '1'); ConfigError if neither."""
    text = str(key).strip()
    if text.isdigit() and 0 < int(text) < len(chemical_symbols):
        return int(text)
    if text in atomic_numbers and text != "X":
        return int(atomic_numbers[text])
    raise ConfigError(f"{option}.{key}: not an element symbol")


# ---- which compositions the references support ------------------------------------------


def supports(support: Mapping | None, numbers: Sequence[int]) -> bool:
    """Whether the references determine the energy of a structure of ``numbers``.

    No support information (a model built without training statistics) supports all.
    """
    if not support:
        return True
    elements = [int(z) for z in support["elements"]]
    present = {int(z) for z in numbers}
    if not present <= set(elements):
        return False
    basis = support.get("basis")
    if basis is None:
        return True
    counts = _counts([Record(numbers=np.asarray(numbers), positions=np.zeros((0, 3)))],
                     elements)[0]  # (K,)
    basis = np.asarray(basis, dtype=float).reshape(-1, len(elements))  # (r, K)
    residual = counts - basis.T @ (basis @ counts)
    return float(np.linalg.norm(residual)) <= SUPPORT_TOLERANCE * float(np.linalg.norm(counts))


def refusal(support: Mapping, record: Record, index: int, remedy: str = "") -> InputError:
    """The InputError for a structure whose energy ``support`` does not determine."""
    trained = ", ".join(support.get("formulas", []))
    more = support.get("n_formulas", 0) - len(support.get("formulas", []))
    trained += f" and {more} more" if more > 0 else ""
    where = record.source or f"structure {index}"
    message = (f"{where}: cannot predict the energy of {formula(record.numbers)}: the "
               f"reference energies fitted on the training compositions ({trained}) do not "
               f"determine it; train on more compositions or give isolated-atom energies "
               f"(data.reference_energies)")
    return InputError(message + (f"; {remedy}" if remedy else ""))


def check_energy_support(support: Mapping | None, records: Sequence[Record],
                         remedy: str = "") -> None:
    """InputError naming the first structure whose energy ``support`` does not determine."""
    for index, record in enumerate(records):
        if not supports(support, record.numbers):
            raise refusal(support, record, index, remedy)


def model_support(model) -> dict | None:
    """The reference support saved with ``model``'s energy head (None: all supported)."""
    heads = getattr(model, "heads", None)
    if heads is None or "energy" not in heads:
        return None
    return getattr(heads["energy"], "options", {}).get("reference_support")


def without_unsupported_energies(records: Sequence[Record],
                                 support: Mapping | None) -> tuple[list[Record], int]:
    """(records, how many lost their energy label): the energy labels of structures whose
    energy ``support`` does not determine are dropped (their other labels are kept)."""
    kept, dropped = [], 0
    for record in records:
        if record.energy is not None and not supports(support, record.numbers):
            record, dropped = replace(record, energy=None), dropped + 1
        kept.append(record)
    return kept, dropped
