"""Dataset statistics that set the model's reference energies and output scales.

Computed from the TRAINING records only (never validation or test), stored in
checkpoints as a plain dict (``to_dict`` / ``from_dict``).

>>> import numpy as np
>>> from tridft.data.record import Record
>>> h2 = Record(numbers=np.array([1, 1]), positions=np.array([[0.0, 0, 0], [0.74, 0, 0]]),
...             energy=-31.0)
>>> stats = compute_stats([h2], cutoff=3.0)
>>> round(stats.reference_energies[1], 3), stats.average_neighbors
(-15.5, 1.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Mapping, Sequence

import numpy as np

from tridft.data.neighbors import NeighborList, neighbor_list
from tridft.data.record import LABELS, Record
from tridft.data.references import fit_references, isolated_atom_references
from tridft.errors import CheckpointError, InputError

# A spread below this is "no spread" (a single structure, an isolated atom ...).
_TINY = 1e-12


@dataclass
class DatasetStats:
    """Statistics of a training set, in internal units. Plain Python values only.

    reference_energies:            {Z: eV}  fitted on the compositions, or isolated atoms
                                   (tridft.data.references)
    reference_support:             the compositions whose energy they determine
                                   (references.fit_references; empty: no energies)
    energy_per_atom_shift:         eV/atom  mean of (E - sum refs) / n_atoms
    energy_per_atom_scale:         eV/atom  std of (E - sum refs) / n_atoms over structures
    forces_rms:                    eV/A     RMS of all force components
    polarizability_per_atom_mean:  A^3/atom mean of trace(a) / 3 / n_atoms
    polarizability_scale:          A^3/atom RMS of the components of a / n_atoms - mean * I
    dipole_scale:                  e*A      RMS of the dipole components
    average_neighbors:             mean number of neighbours per atom within ``cutoff``
    cutoff:                        Angstrom, the cutoff of ``average_neighbors``
    elements:                      sorted atomic numbers seen in the training set
    n_structures:                  number of training structures
    label_counts:                  {label: structures carrying it}

    A scale whose label is absent (or has no spread) is 1.0; a mean or shift is 0.0.
    """

    n_structures: int = 0
    elements: list[int] = field(default_factory=list)
    reference_energies: dict[int, float] = field(default_factory=dict)
    reference_support: dict = field(default_factory=dict)
    energy_per_atom_shift: float = 0.0
    energy_per_atom_scale: float = 1.0
    forces_rms: float = 1.0
    polarizability_per_atom_mean: float = 0.0
    polarizability_scale: float = 1.0
    dipole_scale: float = 1.0
    average_neighbors: float = 1.0
    cutoff: float = 0.0
    label_counts: dict[str, int] = field(default_factory=dict)

    def reference_energy_array(self, size: int = 119) -> np.ndarray:
        """(size,) eV indexed by atomic number; 0 for elements without a reference."""
        array = np.zeros(size)
        for z, energy in self.reference_energies.items():
            array[z] = energy
        return array

    def to_dict(self) -> dict:
        """Plain dict (JSON and ``torch.load(weights_only=True)`` safe)."""
        data = asdict(self)
        numbers = sorted(self.reference_energies)
        data["reference_energies"] = {
            "numbers": [int(z) for z in numbers],
            "values": [float(self.reference_energies[z]) for z in numbers],
        }
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetStats":
        """Inverse of ``to_dict``; a missing field takes its default, an unknown one is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"unknown dataset statistics field '{unknown[0]}'")
        values = dict(data)
        references = values.pop("reference_energies", {"numbers": [], "values": []})
        values["reference_energies"] = {
            int(z): float(e) for z, e in zip(references["numbers"], references["values"])}
        values["elements"] = [int(z) for z in values.get("elements", [])]
        values["label_counts"] = {str(k): int(v) for k, v in values.get("label_counts", {}).items()}
        return cls(**values)


def compute_stats(records: Sequence[Record], cutoff: float,
                  neighbor_lists: Sequence[NeighborList] | None = None,
                  isolated_atoms: Mapping | None = None) -> DatasetStats:
    """Statistics of the training ``records``; ``neighbor_lists`` (same order) avoid recomputing.

    ``cutoff`` (Angstrom) is the model's cutoff, for ``average_neighbors``.
    ``isolated_atoms`` ({symbol or Z: eV}) are the reference energies instead of a fit.
    """
    if len(records) == 0:
        raise InputError("cannot compute statistics of an empty training set")
    with_energy = [r for r in records if r.energy is not None]
    if isolated_atoms:
        references, support = isolated_atom_references(
            isolated_atoms, sorted({int(z) for r in with_energy for z in r.numbers}))
    else:
        references, support = fit_references(with_energy)
    shift, scale = _energy_residual_stats(with_energy, references)
    with_alpha = [r for r in records if r.polarizability is not None]
    alpha_mean, alpha_scale = polarizability_statistics(
        [r.polarizability for r in with_alpha], [r.n_atoms for r in with_alpha])
    forces = [r.forces for r in records if r.forces is not None]
    dipoles = [r.dipole for r in records if r.dipole is not None]
    return DatasetStats(
        n_structures=len(records),
        elements=sorted({int(z) for r in records for z in r.numbers}),
        reference_energies=references,
        reference_support=support,
        energy_per_atom_shift=shift,
        energy_per_atom_scale=scale,
        forces_rms=rms(np.concatenate(forces).ravel()) if forces else 1.0,
        polarizability_per_atom_mean=alpha_mean,
        polarizability_scale=alpha_scale,
        dipole_scale=rms(np.concatenate(dipoles)) if dipoles else 1.0,
        average_neighbors=_average_neighbors(records, cutoff, neighbor_lists),
        cutoff=float(cutoff),
        label_counts={label: sum(r.has(label) for r in records) for label in LABELS},
    )


def fit_reference_energies(records: Sequence[Record]) -> dict[int, float]:
    """{Z: eV} fitted on ``records`` where their compositions determine them; the other
    elements as close to a common value as the data allows (tridft.data.references)."""
    return fit_references(records)[0]


def _energy_residual_stats(records: Sequence[Record],
                           references: dict[int, float]) -> tuple[float, float]:
    """(mean, std) over structures of the per-atom residual (E - sum refs) / n_atoms, eV/atom."""
    if not records:
        return 0.0, 1.0
    residuals = np.array([
        (r.energy - sum(references[int(z)] for z in r.numbers)) / r.n_atoms for r in records])
    scale = float(np.std(residuals))
    return float(np.mean(residuals)), scale if scale > _TINY else 1.0


def polarizability_statistics(tensors: Sequence[np.ndarray],
                              n_atoms: Sequence[int]) -> tuple[float, float]:
    """(mean isotropic polarizability per atom, RMS deviation of the per-atom components
    from it), A^3: the shift and scale of a polarizability-like (3, 3) head; (0, 1)
    without structures."""
    if len(tensors) == 0:
        return 0.0, 1.0
    per_atom = np.stack([np.asarray(t, dtype=np.float64) / n
                         for t, n in zip(tensors, n_atoms)])  # (S, 3, 3)
    mean = float(np.mean(np.trace(per_atom, axis1=1, axis2=2)) / 3.0)
    return mean, rms((per_atom - mean * np.eye(3)).ravel())


def _average_neighbors(records: Sequence[Record], cutoff: float,
                       neighbor_lists: Sequence[NeighborList] | None) -> float:
    if neighbor_lists is None:
        neighbor_lists = [neighbor_list(r.positions, cutoff, r.cell, r.pbc) for r in records]
    edges = sum(len(nl.centers) for nl in neighbor_lists)
    atoms = sum(r.n_atoms for r in records)
    return edges / atoms if atoms else 1.0


def rms(values: np.ndarray) -> float:
    """Root mean square; 1.0 (a neutral scale) when there is nothing to measure."""
    value = float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0
    return value if value > _TINY else 1.0
