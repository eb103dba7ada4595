"""An ASE calculator for a trained tridft model.

    from tridft import TriDFTCalculator
    atoms.calc = TriDFTCalculator("runs/demo/model.pt", forces="conservative")
    atoms.get_potential_energy()            # eV
    atoms.get_forces()                      # (n, 3) eV/Angstrom
    atoms.calc.get_property("polarizability", atoms)  # (3, 3) Angstrom^3

Every structure-level head of the model appears in ``calc.results`` under its
name (``dipole`` in e*Angstrom when the model has a dipole head); atom-level
extra heads too, as (n, ...) arrays. Molecules and periodic cells both work:
an Atoms with no periodic direction is a molecule (its cell is ignored).

The neighbour list is built with ``cutoff + skin`` and reused until an atom
has moved more than ``skin / 2`` (or the atoms, cell or pbc change). That is
exact, not an approximation: the model's cutoff envelope makes every pair
beyond the cutoff contribute exactly zero, and no pair outside ``cutoff + skin``
can come within the cutoff before some atom has moved ``skin / 2``.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from tridft.allocator import keep_freed_memory
from tridft.data.batch import collate
from tridft.data.domain import DomainCheck
from tridft.data.neighbors import NeighborList, neighbor_list
from tridft.data.record import Record, unknown_elements, unknown_elements_message
from tridft.data.references import model_support, refusal, supports
from tridft.devices import check_device
from tridft.errors import InputError
from tridft.md.traced import TracedForward
from tridft.md.uncertainty_watch import UncertaintyWatch
from tridft.model.inference import STRESS, calibration_of, run_model
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES, TriDFTModel
from tridft.model.persistence import load_model, trained_force_source

logger = logging.getLogger(__name__)

# Results of the calibrated uncertainty (tridft.uncertainty.llpr), when asked for.
UNCERTAINTY_RESULTS = ["energy_uncertainty", "forces_uncertainty", "forces_uncertainty_max",
                       "polarizability_uncertainty"]

# "both": forces are -dE/dR and results["direct_forces"] the direct head's, from one call
# (the multiple-time-step integrator's correction steps).
FORCE_SOURCES = ("direct", "conservative", "both")
# Model outputs that are not properties of the structure.
_INTERNAL_OUTPUTS = {FORCES, CONSERVATIVE_FORCES, "latent_kl"}


class SkinNeighborList:
    """A neighbour list with a skin, rebuilt only when it could have become wrong.

    ``get(record)`` returns the pairs within ``cutoff + skin`` of the last rebuild.
    """

    def __init__(self, cutoff: float, skin: float = 0.5):
        if skin < 0:
            raise ValueError(f"skin must be >= 0, got {skin}")
        self.cutoff = cutoff
        self.skin = skin
        self.rebuilds = 0  # how many times the list was computed (for tests and logs)
        self._list: NeighborList | None = None
        self._reference: Record | None = None  # the geometry of the last rebuild

    def get(self, record: Record) -> NeighborList:
        if self._needs_rebuild(record):
            self._list = neighbor_list(record.positions, self.cutoff + self.skin, record.cell,
                                       record.pbc)
            self._reference = Record(numbers=record.numbers.copy(),
                                     positions=record.positions.copy(),
                                     cell=None if record.cell is None else record.cell.copy(),
                                     pbc=record.pbc.copy())
            self.rebuilds += 1
        return self._list

    def _needs_rebuild(self, record: Record) -> bool:
        old = self._reference
        if old is None or self._list is None:
            return True
        if not np.array_equal(old.numbers, record.numbers) \
                or not np.array_equal(old.pbc, record.pbc):
            return True
        if (old.cell is None) != (record.cell is None):
            return True
        if old.cell is not None and not np.array_equal(old.cell, record.cell):
            return True
        displacement = np.linalg.norm(record.positions - old.positions, axis=1)
        return bool(displacement.max(initial=0.0) > 0.5 * self.skin)


class TriDFTCalculator(Calculator):
    """Energy, forces, polarizability (and any extra head) from a tridft model.

    model_or_path: a TriDFTModel or the path of a saved model. A model object in
                   eval mode on ``device`` with ``dtype`` is used as it is (later changes
                   to its weights are seen); otherwise the calculator converts a copy
                   and leaves the caller's model untouched.
    forces:        "direct" (the force head, no backward pass: fast) or
                   "conservative" (-dE/dR by autograd: exactly the gradient of the
                   energy, so NVE dynamics conserves energy); default: the forces
                   the model was trained for.
    device:        torch device to evaluate on.
    dtype:         torch dtype of the evaluation (default: the model's own).
    skin:          Angstrom added to the cutoff of the reused neighbour list.
    traced:        evaluate energy and forces with a TorchScript trace of the model on a
                   CPU (tridft.md.traced; the same numbers, about twice as fast for small
                   molecules). The trace holds the model's parameter tensors: in-place
                   changes to the weights are seen, a replaced module is not.
    uncertainty:   add the calibrated uncertainties to the results (the model must
                   carry a calibration; costs one backward pass per evaluation).
    uncertainty_limit, on_uncertainty: watch forces_uncertainty_max (eV/Angstrom) and
                   "warn" or "stop" (UncertaintyExceeded) above the limit; implies
                   ``uncertainty`` (tridft.md.uncertainty_watch).

    Results (ASE units are tridft's internal units: eV, Angstrom, e*Angstrom, Angstrom^3):
    energy, free_energy (the same number), forces (n, 3), polarizability (3, 3),
    and every further head of the model under its name; stress (6, Voigt order xx yy
    zz yz xz xy, eV/Angstrom^3, zero for a molecule) when asked for (atoms.get_stress());
    with ``uncertainty``: energy_uncertainty (eV), forces_uncertainty (n,) and
    forces_uncertainty_max (eV/Angstrom), polarizability_uncertainty (Angstrom^3),
    predicted standard deviations (tridft.uncertainty.llpr).
    """

    def __init__(self, model_or_path: TriDFTModel | str | os.PathLike, forces: str | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 skin: float = 0.5, traced: bool = True, uncertainty: bool = False,
                 uncertainty_limit: float | None = None, on_uncertainty: str = "warn",
                 **kwargs):
        super().__init__(**kwargs)
        keep_freed_memory()
        if isinstance(model_or_path, (str, Path, os.PathLike)):
            model = load_model(model_or_path)
        elif isinstance(model_or_path, TriDFTModel):
            model = model_or_path
        else:
            raise InputError(f"expected a TriDFTModel or the path of a saved model, "
                             f"got {type(model_or_path).__name__}")
        self.device = check_device(device, "device")
        self.dtype = dtype or next(model.parameters()).dtype
        self.model = _ready_for_evaluation(model, self.device, self.dtype)
        self.force_source = forces or trained_force_source(model)
        # Refuses what the model cannot describe; warns once when leaving its domain.
        self.domain = DomainCheck.for_model(model, source=None)
        self._domain_warned = False
        self.neighbors = SkinNeighborList(model.cutoff, skin)
        self.traced = traced
        self._traced: TracedForward | None = None
        extra = [name for name in model.heads if name not in (ENERGY, FORCES)]
        # An instance attribute: which properties exist depends on the model's heads.
        self.implemented_properties = ["energy", "free_energy", "forces"] + extra
        # Results with one row per atom (the rest are per structure).
        self.per_atom_properties = ["forces"] + [name for name in extra
                                                 if model.heads[name].level == "atom"]
        self.watch = None if uncertainty_limit is None \
            else UncertaintyWatch(uncertainty_limit, on_uncertainty)
        self.uncertainty = bool(uncertainty) or self.watch is not None
        if self.uncertainty:
            calibration_of(self.model)  # UncertaintyUnavailable now, not at the first step
            self.implemented_properties += UNCERTAINTY_RESULTS
            self.per_atom_properties.append("forces_uncertainty")
        self.implemented_properties.append("stress")
        self._stress_asked = False  # once asked (NPT, cell relaxation), always computed

    @property
    def force_source(self) -> str:
        """"direct", "conservative" or "both"; changing it discards the cached results."""
        return self._force_source

    @force_source.setter
    def force_source(self, value: str) -> None:
        if value not in FORCE_SOURCES:
            raise InputError(f"forces must be one of {', '.join(FORCE_SOURCES)}, not '{value}'")
        if value != getattr(self, "_force_source", value):
            self.results = {}
        self._force_source = value

    @property
    def elements(self) -> list[int]:
        """Atomic numbers the model was trained on (empty: not recorded, all accepted)."""
        return list(self.model.elements)

    def _energy_given(self, record: Record, properties) -> bool:
        """Whether the energy of ``record`` is given: InputError when it is asked for but
        the model's reference energies do not determine it (tridft.data.references)."""
        support = model_support(self.model)
        if supports(support, record.numbers):
            return True
        if {"energy", "free_energy"} & set(properties):
            raise refusal(support, record, 0, "its forces and other properties are given")
        return False

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        record = atoms_to_geometry(self.atoms)
        self._check_elements(record.numbers)
        pairs = self.neighbors.get(record)
        outside = self.domain.structure(record, pairs=pairs)
        batch = collate([record], self.model.cutoff, neighbor_lists=[pairs],
                        dtype=self.dtype).to(self.device)
        self._stress_asked |= "stress" in properties
        periodic = record.cell is not None
        outputs = self._outputs(batch, stress=self._stress_asked and periodic)
        forces_key = FORCES if self.force_source == "direct" else CONSERVATIVE_FORCES

        self.results = {}
        if ENERGY in outputs and self._energy_given(record, properties):
            energy = float(outputs[ENERGY].detach()[0])
            self.results.update(energy=energy, free_energy=energy)
        if forces_key in outputs:
            self.results["forces"] = _numpy(outputs[forces_key])
        if self.force_source == "both":
            self.results["direct_forces"] = _numpy(outputs[FORCES])
        for name, head in self.model.heads.items():
            if name in _INTERNAL_OUTPUTS or name == ENERGY or name not in outputs:
                continue  # (a dipole is not defined in a periodic cell)
            value = _numpy(outputs[name])
            # Structure-level outputs are (S, ...) with S = 1; atom-level are (n, ...).
            self.results[name] = value if head.level == "atom" else value[0]
        if self._stress_asked:
            self.results["stress"] = full_3x3_to_voigt_6_stress(_numpy(outputs[STRESS][0])) \
                if periodic else np.zeros(6)
        if self.uncertainty:
            for name in UNCERTAINTY_RESULTS:
                if name in outputs:
                    value = _numpy(outputs[name])
                    self.results[name] = value if name == "forces_uncertainty" else value[0]
        outside |= self.domain.prediction(record, self.results)  # NaN, 1e31: InputError
        if outside and not self._domain_warned:
            self._domain_warned = True
            logger.warning("the structure has left the training domain of the model (%s): "
                           "its results are extrapolations (reported once)",
                           self.domain.describe(outside))
        if self.watch is not None:
            self.watch.check(self.results)

    def check_state(self, atoms, tol=1e-15):
        """What changed since the last calculation, as ASE's check_state, but with exact
        comparisons (np.array_equal) instead of np.allclose: ASE asks this several times
        per MD step, and allclose cost as much as evaluating a small molecule's model."""
        if self.atoms is None:
            return list(all_changes)
        changes = [name for name in ("cell", "pbc")
                   if not np.array_equal(getattr(self.atoms, name), getattr(atoms, name))]
        ours, theirs = self.atoms.arrays, atoms.arrays
        watched = set(all_changes) - set(self.ignored_changes)
        changes += sorted(watched & (set(ours) ^ set(theirs)))
        changes += [name for name in sorted(watched & set(ours) & set(theirs))
                    if not np.array_equal(ours[name], theirs[name])]
        return changes

    def _outputs(self, batch, stress: bool) -> dict[str, torch.Tensor]:
        """The model's outputs for ``batch``. Energy and forces alone run a trace of the
        model on a CPU (about twice as fast for small molecules, tridft.md.traced)."""
        if self.traced and not stress and not self.uncertainty and self.device.type == "cpu":
            if self._traced is None or not self._traced.matches(batch):
                self._traced = TracedForward(self.model, batch)
            if self._traced.module is not None:
                return self._traced(batch, conservative=self.force_source != "direct")
        return run_model(self.model, batch, forces=self.force_source, stress=stress,
                         uncertainty=self.uncertainty)

    def _check_elements(self, numbers: np.ndarray) -> None:
        unknown = unknown_elements(numbers, self.model.elements)
        if unknown:
            raise InputError(unknown_elements_message(unknown, self.model.elements))


def _ready_for_evaluation(model: TriDFTModel, device: torch.device,
                         dtype: torch.dtype) -> TriDFTModel:
    """``model`` itself if it is in eval mode on ``device`` with ``dtype``, else a converted copy."""
    parameter = next(model.parameters())
    if not model.training and parameter.device == device and parameter.dtype == dtype:
        return model
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()


def atoms_to_geometry(atoms) -> Record:
    """The geometry of an ase.Atoms as a Record without labels (cell None for a molecule)."""
    pbc = np.array(atoms.pbc, dtype=bool)
    cell = np.array(atoms.cell, dtype=np.float64)
    if pbc.any() and abs(np.linalg.det(cell)) < 1e-12:
        raise InputError("periodic structure with a degenerate cell (zero volume)", field="cell")
    return Record(numbers=np.array(atoms.numbers, dtype=np.int64),
                  positions=np.array(atoms.positions, dtype=np.float64),
                  cell=cell if pbc.any() else None,
                  pbc=pbc if pbc.any() else np.zeros(3, dtype=bool))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()
