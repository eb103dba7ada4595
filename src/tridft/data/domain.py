"""The training domain of a model, and checks of what the model is later used on.

A model answers for every structure, also for those unlike anything it was trained
on, and its answers there can be wildly wrong (a compressed molecule with a negative
polarizability of thousands of Angstrom^3, a crushed cell at 1e31 eV) while looking
like any other number. So training records what its structures looked like, cheaply,
from the neighbour lists it computes anyway::

    domain = Domain.from_records(train_records, cutoff, neighbor_lists, references)
    metadata["domain"] = domain.to_dict()          # saved with the model

and every command that runs the model compares each structure with it::

    check = DomainCheck.for_model(model, "data.extxyz")
    check.structures(records)        # InputError for what cannot be meaningful
    predictions = predict(model, records)
    check.predictions(records, predictions)
    check.report()                   # one warning for the file, with counts

Refused (InputError naming the file, structure and field): atoms closer than half the
shortest distance of their element pair in training; an atom with more than
REFUSE_NEIGHBORS times as many neighbours as any training atom had; predictions that
are not finite or beyond any physical meaning (ABSURD_*). Warned about, once per file:
atoms closer than in training (WARN_DISTANCE), more or fewer neighbours than in
training, element proportions outside the training range, periodic cells for a model
of molecules or cells narrower than the cutoff, predictions outside the range of the
training labels (OUTPUT_MARGIN).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from ase.data import chemical_symbols

from tridft.data.neighbors import NeighborList, neighbor_list
from tridft.data.record import Record, unknown_elements, unknown_elements_message
from tridft.errors import InputError

logger = logging.getLogger(__name__)

WARN_DISTANCE = 0.9  # x the shortest training distance of the pair: warned below
REFUSE_DISTANCE = 0.5  # refused below
REFUSE_NEIGHBORS = 4.0  # x the most neighbours in training (and at least 16 more): refused
OUTPUT_MARGIN = 1.0  # predictions beyond the training range by this x its width: warned
ABSURD_ENERGY_PER_ATOM = 1e3  # eV/atom away from the reference energies: refused
ABSURD_FORCE = 1e4  # eV/Angstrom
ABSURD_POLARIZABILITY_PER_ATOM = 1e4  # Angstrom^3
_Z = 119  # atomic numbers 0..118


def _pair_codes(numbers: np.ndarray, centers: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
    a, b = numbers[centers], numbers[neighbors]
    return np.minimum(a, b) * _Z + np.maximum(a, b)


def _pair_name(code: int) -> str:
    return f"{chemical_symbols[code // _Z]}-{chemical_symbols[code % _Z]}"


def _edges(record: Record, pairs: NeighborList) -> tuple[np.ndarray, np.ndarray]:
    """(pair codes (E,), distances (E,) Angstrom) of the edges ``pairs`` of ``record``."""
    vectors = record.positions[pairs.neighbors] - record.positions[pairs.centers]
    if record.cell is not None and len(pairs.shifts):
        vectors = vectors + pairs.shifts @ record.cell
    return _pair_codes(record.numbers, pairs.centers, pairs.neighbors), \
        np.linalg.norm(vectors, axis=1)


def _cell_heights(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    volume = abs(float(np.linalg.det(cell)))
    heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    return heights[np.asarray(pbc, dtype=bool)]


@dataclass
class Domain:
    """What the training structures and labels looked like (internal units, plain data).

    min_distance:    {"Z1-Z2": Angstrom} shortest distance of each element pair within cutoff
    neighbors:       [min, max] neighbours within the cutoff of one atom
    composition:     {"Z": [min, max]} fraction of a structure's atoms that are element Z
    min_cell_height: Angstrom, narrowest periodic cell (None: only molecules)
    energy_per_atom: [min, max] of (E - sum of reference energies) / atoms, eV
    max_force:       largest force component, eV/Angstrom
    polarizability_per_atom: [min, max] eigenvalue of alpha / atoms, Angstrom^3
    """

    cutoff: float
    elements: list[int]
    min_distance: dict[str, float] = field(default_factory=dict)
    neighbors: list[int] = field(default_factory=lambda: [0, 0])
    composition: dict[str, list[float]] = field(default_factory=dict)
    min_cell_height: float | None = None
    reference_energies: dict[str, float] = field(default_factory=dict)
    energy_per_atom: list[float] | None = None
    max_force: float | None = None
    polarizability_per_atom: list[float] | None = None

    @classmethod
    def from_records(cls, records: Sequence[Record], cutoff: float,
                     neighbor_lists: Sequence[NeighborList] | None = None,
                     references: dict[int, float] | None = None) -> "Domain":
        """The domain of ``records`` (the training split) with their neighbour lists."""
        shortest = np.full(_Z * _Z, np.inf)
        low, high = np.inf, 0
        fractions_low, fractions_high = np.ones(_Z), np.zeros(_Z)
        heights = []
        for k, record in enumerate(records):
            pairs = neighbor_lists[k] if neighbor_lists is not None else \
                neighbor_list(record.positions, cutoff, record.cell, record.pbc)
            codes, distances = _edges(record, pairs)
            np.minimum.at(shortest, codes, distances)
            counts = np.bincount(pairs.centers, minlength=record.n_atoms)
            low, high = min(low, int(counts.min())), max(high, int(counts.max()))
            fractions = np.bincount(record.numbers, minlength=_Z) / record.n_atoms
            fractions_low, fractions_high = np.minimum(fractions_low, fractions), \
                np.maximum(fractions_high, fractions)
            if record.is_periodic:
                heights.append(float(_cell_heights(record.cell, record.pbc).min()))
        elements = sorted({int(z) for r in records for z in r.numbers})
        references = {int(z): float(e) for z, e in (references or {}).items()}
        return cls(
            cutoff=float(cutoff), elements=elements,
            min_distance={_pair_key(code): float(shortest[code])
                          for code in np.flatnonzero(np.isfinite(shortest))},
            neighbors=[int(low), int(high)] if records else [0, 0],
            composition={str(z): [float(fractions_low[z]), float(fractions_high[z])]
                         for z in elements},
            min_cell_height=min(heights) if heights else None,
            reference_energies={str(z): e for z, e in references.items()},
            **_label_ranges(records, references))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Domain":
        return cls(**data)

    def shortest_table(self) -> np.ndarray:
        """(119*119,) shortest training distance by pair code; unseen pairs get the shortest
        distance of any pair (inf when there is none)."""
        table = np.full(_Z * _Z, np.inf)
        for key, value in self.min_distance.items():
            a, b = (int(z) for z in key.split("-"))
            table[min(a, b) * _Z + max(a, b)] = value
        fallback = min(self.min_distance.values(), default=np.inf)
        table[~np.isfinite(table)] = fallback
        return table


def _pair_key(code: int) -> str:
    return f"{code // _Z}-{code % _Z}"


def _label_ranges(records: Sequence[Record], references: dict[int, float]) -> dict:
    ranges: dict = {}
    with_energy = [r for r in records if r.energy is not None]
    if with_energy and references:
        residuals = [(r.energy - sum(references.get(int(z), 0.0) for z in r.numbers))
                     / r.n_atoms for r in with_energy]
        ranges["energy_per_atom"] = [float(min(residuals)), float(max(residuals))]
    forces = [np.abs(r.forces).max() for r in records if r.forces is not None]
    if forces:
        ranges["max_force"] = float(max(forces))
    alphas = [np.linalg.eigvalsh(r.polarizability) / r.n_atoms for r in records
              if r.polarizability is not None]
    if alphas:
        ranges["polarizability_per_atom"] = [float(np.min(alphas)), float(np.max(alphas))]
    return ranges


# Why a structure is outside the domain: category -> text of the warning.
_REASONS = {
    "short": "atoms closer than in training",
    "crowded": "atoms with more neighbours than in training",
    "sparse": "atoms with fewer neighbours than in training",
    "composition": "element proportions outside the training range",
    "periodic": "periodic cells (the model was trained on molecules)",
    "small_cell": "cells narrower than the cutoff",
    "energy": "energies outside the training range",
    "forces": "forces larger than in training",
    "polarizability": "polarizabilities outside the training range",
}


class DomainCheck:
    """Checks the structures (and predictions) of one file against a model's domain."""

    def __init__(self, domain: Domain | None, source: str | None, elements=()):
        self.domain = domain
        self.source = source
        self.elements = [int(z) for z in (domain.elements if domain is not None else elements)]
        self.table = domain.shortest_table() if domain is not None else None
        self._references = np.zeros(_Z)  # eV by atomic number
        self._shares = np.zeros((_Z, 2))  # [min, max] share of each training element
        if domain is not None:
            for key, value in domain.reference_energies.items():
                self._references[int(key)] = value
            for key, bounds in domain.composition.items():
                self._shares[int(key)] = bounds
        self.outside: dict[int, set[str]] = {}  # structure -> categories
        self.examples: dict[str, str] = {}  # category -> the most telling detail
        self._worst: dict[str, float] = {}  # category -> badness of that example
        self.checked = 0

    @classmethod
    def for_model(cls, model, source: str | None) -> "DomainCheck":
        data = (getattr(model, "metadata", None) or {}).get("domain")
        domain = Domain.from_dict(data) if data else None
        return cls(domain, None if source is None else str(source),
                   getattr(model, "elements", ()))

    # ---- inputs ------------------------------------------------------------------------

    def structures(self, records: Sequence[Record]) -> None:
        for index, record in enumerate(records):
            self.structure(record, index)

    def structure(self, record: Record, index: int | None = None,
                  pairs: NeighborList | None = None) -> set[str]:
        """Categories of ``record`` outside the domain; InputError for a refusal.

        ``pairs``: its neighbour list (any cutoff at least the model's), if at hand.
        """
        self.checked += 1
        unknown = unknown_elements(record.numbers, self.elements)
        if unknown:
            raise self._error(unknown_elements_message(unknown, self.elements), index, "numbers")
        domain = self.domain
        if domain is None:
            return set()
        found: set[str] = set()
        if pairs is None:
            pairs = neighbor_list(record.positions, domain.cutoff, record.cell, record.pbc)
        codes, distances = _edges(record, pairs)
        if len(distances):
            ratio = distances / self.table[codes]
            worst = int(np.argmin(ratio))
            detail = (f"{_pair_name(int(codes[worst]))} {distances[worst]:.3g} Angstrom, "
                      f"shortest in training {self.table[codes[worst]]:.3g}")
            if ratio[worst] < REFUSE_DISTANCE:
                raise self._error(f"atoms {pairs.centers[worst]} and {pairs.neighbors[worst]} "
                                  f"are closer than half the shortest distance of their "
                                  f"elements in training ({detail}): no prediction there "
                                  "can be meaningful", index, "positions")
            if ratio[worst] < WARN_DISTANCE:
                self._note(found, "short", detail, ratio[worst])
        inside = distances < domain.cutoff
        counts = np.bincount(pairs.centers[inside], minlength=record.n_atoms)
        low, high = domain.neighbors
        most = int(counts.max()) if len(counts) else 0
        if most > max(REFUSE_NEIGHBORS * high, high + 16):
            raise self._error(f"atom {int(np.argmax(counts))} has {most} neighbours within "
                              f"the cutoff {domain.cutoff:g} Angstrom, training atoms at most "
                              f"{high}: far too dense a structure for this model", index,
                              "positions")
        if most > high:
            self._note(found, "crowded", f"up to {most}, training at most {high}", -most)
        if len(counts) and int(counts.min()) < low:
            self._note(found, "sparse", f"down to {int(counts.min())}, training at least {low}",
                       counts.min())
        fractions = np.bincount(record.numbers, minlength=_Z) / record.n_atoms
        lows, highs = self._shares[:, 0] - 1e-9, self._shares[:, 1] + 1e-9
        odd = np.flatnonzero((fractions < lows) | (fractions > highs))
        if domain.composition and len(odd):
            z, (lo, hi) = int(odd[0]), self._shares[odd[0]]
            self._note(found, "composition", f"{chemical_symbols[z]} {fractions[z]:.2f}, "
                       f"training {lo:.2f}..{hi:.2f}", 0)
        if record.is_periodic:
            if domain.min_cell_height is None:
                self._note(found, "periodic", "", 0)
            height = float(_cell_heights(record.cell, record.pbc).min())
            if height < domain.cutoff and (domain.min_cell_height or np.inf) > height:
                self._note(found, "small_cell", f"{height:.3g} Angstrom, cutoff "
                           f"{domain.cutoff:g}", height)
        self._record(index, found)
        return found

    # ---- outputs -----------------------------------------------------------------------

    def predictions(self, records: Sequence[Record], predictions: Sequence[dict]) -> None:
        for index, (record, outputs) in enumerate(zip(records, predictions)):
            self.prediction(record, outputs, index)

    def prediction(self, record: Record, outputs: dict, index: int | None = None) -> set[str]:
        """Categories of ``outputs`` outside the training labels' range; InputError for
        non-finite or absurd predictions."""
        for name, value in outputs.items():
            array = np.asarray(value, dtype=float)
            if not np.all(np.isfinite(array)):
                bad = "NaN" if np.isnan(array).any() else "an infinite value"
                raise self._error(f"the model predicts {bad} for {name}: this structure is "
                                  "beyond what it can describe (or the model is damaged)",
                                  index, name)
        n = record.n_atoms
        found: set[str] = set()
        domain = self.domain
        if "energy" in outputs and domain is not None and domain.reference_energies:
            residual = (float(outputs["energy"])
                        - float(self._references[record.numbers].sum())) / n
            self._absurd(abs(residual) > ABSURD_ENERGY_PER_ATOM, "energy",
                         f"{residual:.3g} eV per atom from the reference energies", index)
            if domain.energy_per_atom and _outside(residual, domain.energy_per_atom):
                lo, hi = domain.energy_per_atom
                self._note(found, "energy", f"{residual:.3g} eV/atom, training "
                           f"{lo:.3g}..{hi:.3g}", -abs(residual))
        for key in ("forces", "conservative_forces"):
            if key in outputs:
                largest = float(np.abs(outputs[key]).max(initial=0.0))
                self._absurd(largest > ABSURD_FORCE, key, f"{largest:.3g} eV/Angstrom", index)
                if domain is not None and domain.max_force and largest > 3 * domain.max_force:
                    self._note(found, "forces", f"up to {largest:.3g} eV/Angstrom, training "
                               f"{domain.max_force:.3g}", -largest)
        if "polarizability" in outputs:
            alpha = np.asarray(outputs["polarizability"], dtype=float).reshape(3, 3)
            values = np.linalg.eigvalsh(0.5 * (alpha + alpha.T)) / n
            self._absurd(np.abs(values).max() > ABSURD_POLARIZABILITY_PER_ATOM,
                         "polarizability", f"{np.abs(values).max():.3g} Angstrom^3 per atom",
                         index)
            if domain is not None and domain.polarizability_per_atom and (
                    _outside(values.min(), domain.polarizability_per_atom)
                    or _outside(values.max(), domain.polarizability_per_atom)):
                lo, hi = domain.polarizability_per_atom
                worst = values.min() if _outside(values.min(), [lo, hi]) else values.max()
                self._note(found, "polarizability", f"eigenvalue {worst:.3g} Angstrom^3 per "
                           f"atom, training {lo:.3g}..{hi:.3g}", -abs(worst))
        self._record(index, found)
        return found

    # ---- the report ----------------------------------------------------------------------

    def report(self) -> int:
        """Log one warning for everything outside the domain; how many structures were."""
        if not self.outside:
            return 0
        counts = {category: sum(category in found for found in self.outside.values())
                  for category in _REASONS}
        parts = [f"{count} with {self.describe({category})}"
                 for category, count in counts.items() if count]
        logger.warning("%s: %d of %d structures lie outside the training domain of the model, "
                       "so their predictions are extrapolations: %s", self.source or "input",
                       len(self.outside), max(self.checked, len(self.outside)),
                       "; ".join(parts))
        return len(self.outside)

    def describe(self, categories: set[str]) -> str:
        """'atoms closer than in training (C-H 0.8 Angstrom, ...); ...' for ``categories``."""
        return "; ".join(_REASONS[c] + (f" ({self.examples[c]})" if self.examples.get(c) else "")
                         for c in _REASONS if c in categories)

    @property
    def n_outside(self) -> int:
        return len(self.outside)

    def _note(self, found: set[str], category: str, detail: str, badness: float) -> None:
        """Add ``category``; keep the detail of the worst case seen (lowest ``badness``)."""
        found.add(category)
        best = self._worst.get(category)
        if best is None or badness < best:
            self._worst[category] = badness
            self.examples[category] = detail

    def _record(self, index: int | None, found: set[str]) -> None:
        if found:
            key = index if index is not None else -1
            self.outside.setdefault(key, set()).update(found)

    def _absurd(self, condition: bool, field: str, detail: str, index: int | None) -> None:
        if condition:
            raise self._error(f"the model predicts {detail} for {field}: no physical "
                              "structure has that; this one is beyond what the model can "
                              "describe", index, field)

    def _error(self, message: str, index: int | None, field: str) -> InputError:
        return InputError(message, path=self.source, index=index, field=field)


def _outside(value: float, bounds: Sequence[float]) -> bool:
    lo, hi = bounds
    margin = OUTPUT_MARGIN * max(hi - lo, 1e-3 * max(abs(lo), abs(hi)), 1e-6)
    return not lo - margin <= value <= hi + margin
