"""Labels orders of magnitude off a model's training statistics: probably other units.

    for hint in unit_hints(model.metadata.get("stats"), records, "test.extxyz"):
        logger.warning(hint)

Energies in kcal/mol read as eV are 23 times too large, and the errors they give (an
energy MAE of 1e5 eV) say nothing about why. Each label is compared with what the
model was trained on, as a ratio; far from 1, the hint names the units whose
conversion factor explains the ratio best, as a ``--units`` option.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from tridft.data.record import Record
from tridft import units

# |log10(ratio)| above which a label is called off (energies are tight; forces vary
# with temperature, so they need a wider margin).
_THRESHOLDS = {"energy": 0.5, "forces": 1.0, "polarizability": 0.5, "dipole": 0.6}


def unit_hints(stats: dict | None, records: Sequence[Record], path: str) -> list[str]:
    """One line per label whose scale is far from the training statistics ``stats``
    (a DatasetStats dict, as saved in a model's metadata)."""
    if not stats:
        return []
    ratios = {}
    references = stats.get("reference_energies") or {}
    reference = dict(zip(references.get("numbers", []), references.get("values", [])))
    labelled = [r for r in records if r.energy is not None]
    if labelled and reference:
        expected = np.array([sum(reference.get(int(z), 0.0) for z in r.numbers)
                             + r.n_atoms * stats.get("energy_per_atom_shift", 0.0)
                             for r in labelled])
        actual = np.array([r.energy for r in labelled])
        if np.all(np.abs(expected) > 1e-6):
            ratios["energy"] = float(np.median(actual / expected))
    forces = [r.forces for r in records if r.forces is not None]
    if forces and stats.get("label_counts", {}).get("forces"):
        ratios["forces"] = _rms(np.concatenate(forces)) / stats.get("forces_rms", 1.0)
    alphas = [np.trace(r.polarizability) / 3 / r.n_atoms for r in records
              if r.polarizability is not None]
    mean = stats.get("polarizability_per_atom_mean", 0.0)
    if alphas and abs(mean) > 1e-9:
        ratios["polarizability"] = float(np.mean(alphas)) / mean
    dipoles = [r.dipole for r in records if r.dipole is not None]
    if dipoles and stats.get("label_counts", {}).get("dipole"):
        ratios["dipole"] = _rms(np.concatenate(dipoles)) / stats.get("dipole_scale", 1.0)
    hints = []
    for label, ratio in ratios.items():
        if ratio > 0 and abs(math.log10(ratio)) > _THRESHOLDS[label]:
            hints.append(f"{path}: the {label} labels are {_times(ratio)} those the model was "
                         f"trained on (in internal units){_suggest(label, ratio)}")
        elif ratio <= 0 and label in ("energy", "polarizability"):
            hints.append(f"{path}: the {label} labels have the opposite sign of those the "
                         f"model was trained on: other units or another reference?")
    return hints


def _candidates(label: str) -> dict[str, float]:
    """unit -> factor to internal units, for the label."""
    if label == "energy":
        return dict(units.ENERGY_TO_INTERNAL)
    if label == "forces":
        return {f"energy={e},length={length}": units.ENERGY_TO_INTERNAL[e]
                / units.LENGTH_TO_INTERNAL[length]
                for e in ("ev", "hartree", "kcal/mol", "kj/mol", "mev")
                for length in ("angstrom", "bohr", "nm")}
    if label == "polarizability":
        return dict(units.POLARIZABILITY_TO_INTERNAL)
    return dict(units.DIPOLE_TO_INTERNAL)


def _suggest(label: str, ratio: float) -> str:
    """', as if they were in kcal/mol: try --units energy=kcal/mol' or ''."""
    best, distance = None, math.inf
    for unit, factor in _candidates(label).items():
        off = abs(math.log10(ratio * factor))  # 0 when the unit explains the ratio
        if factor != 1.0 and off < distance:
            best, distance = unit, off
    if best is None or distance > 0.15:
        return ": labels in other units (see --units), or another kind of structure?"
    option = best if "=" in best else f"{label}={best}"
    return f", as if they were in {best.replace('energy=', '').replace(',length=', '/')}: " \
           f"try --units {option}"


def _times(ratio: float) -> str:
    return f"{ratio:.3g} times" if ratio >= 1 else f"1/{1 / ratio:.3g} of"


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0
