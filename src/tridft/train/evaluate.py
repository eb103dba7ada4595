"""Metrics of a model on labelled structures, and its predictions on any structures.

    metrics = evaluate(model, records, forces="direct")
    metrics["forces_mae"]            # eV/Angstrom, over force components
    pairs = predictions_and_targets(model, records)
    pairs["polarizability"].errors   # (K, 3, 3) Angstrom^3, for parity plots
    outputs = predict(model, records) # one dict of predictions per structure

A metric is computed only over the structures that carry its label, and left out
altogether when none does (or when the model has no head for it): a missing label
never counts as a zero. The Jacobian consistency |F_direct + dE/dR| needs no label
and is reported for every model with an energy and a direct force head. The energy
of a composition the model's reference energies do not determine is refused
(InputError, see tridft.data.references).

The model runs in eval mode without gradients, except for the one backward pass
that gives the conservative forces -dE/dR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from tridft.data.batch import collate
from tridft.data.record import Record, unknown_elements, unknown_elements_message
from tridft.data.references import check_energy_support, model_support
from tridft.errors import InputError
from tridft.model.inference import run_model
from tridft.model.jacobian import consistency_error
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES, POLARIZABILITY
from tridft.uncertainty.llpr import SUFFIX as UNCERTAINTY_SUFFIX

FORCE_SOURCES = ("direct", "conservative")

_NOT_PREDICTIONS = ("latent_kl",)  # model outputs that are not properties of the structure
# Where the standard outputs of the model live.
_KNOWN_LEVELS = {ENERGY: "structure", POLARIZABILITY: "structure",
                 FORCES: "atom", CONSERVATIVE_FORCES: "atom"}

# Unit of every metric evaluate() can report; metrics of extra heads (other than the
# dipole) are in the units of their labels, which tridft does not know.
METRIC_UNITS = {
    "n_structures": "",
    "n_atoms": "",
    "energy_mae": "eV",
    "energy_rmse": "eV",
    "energy_mae_per_atom": "eV/atom",
    "forces_mae": "eV/A",
    "forces_rmse": "eV/A",
    "direct_forces_mae": "eV/A",
    "direct_forces_rmse": "eV/A",
    "conservative_forces_mae": "eV/A",
    "conservative_forces_rmse": "eV/A",
    "polarizability_mae": "A^3",
    "polarizability_rmse": "A^3",
    "polarizability_iso_mae": "A^3",
    "dipole_mae": "e*A",
    "dipole_rmse": "e*A",
    "jacobian_consistency_mae": "eV/A",
    "jacobian_consistency_max": "eV/A",
}


@dataclass
class Comparison:
    """Predictions next to their labels, for the structures (or atoms) that carry the label.

    energy (K,) eV; energy_per_atom (K,) eV/atom; forces (M, 3) eV/Angstrom over the
    atoms of labelled structures; polarizability (K, 3, 3) Angstrom^3; extra heads
    (dipole, ...) flattened to their components, (3K,) e*A for the dipole.
    """

    predicted: np.ndarray
    target: np.ndarray

    @property
    def errors(self) -> np.ndarray:
        return self.predicted - self.target

    def mae(self) -> float:
        return float(np.mean(np.abs(self.errors)))

    def rmse(self) -> float:
        return float(np.sqrt(np.mean(self.errors**2)))


def check_elements(model, records: Sequence[Record]) -> None:
    """InputError naming the first structure with an element the model was not trained on.

    A model that does not list its elements (``model.elements`` empty) accepts any.
    """
    known = getattr(model, "elements", None) or []
    for index, record in enumerate(records):
        unknown = unknown_elements(record.numbers, known)
        if unknown:
            where = record.source or f"structure {index}"
            raise InputError(f"{where}: {unknown_elements_message(unknown, sorted(known))}")


def predict(model, records: Sequence[Record], forces: str | None = None,
            batch_size: int = 64, stress: bool = False, uncertainty: bool = False,
            energy: bool = True) -> list[dict[str, np.ndarray | float]]:
    """One dict per structure: energy (eV, float), forces (n, 3) eV/A from ``forces``
    (default: those the model was trained for), polarizability (3, 3) A^3 and every
    extra head by name (dipole (3,) e*A, ...); with ``stress``, stress (3, 3) eV/A^3
    for periodic structures; with ``uncertainty``, the calibrated uncertainties
    (tridft.model.inference: energy_uncertainty, forces_uncertainty (n,), ...).

    InputError for a structure whose energy the reference energies do not determine;
    ``energy=False`` leaves the energies out (and predicts the rest of such structures).
    """
    forces = _force_source(model, forces)
    if energy:
        check_energy_support(model_support(model), records,
                             "--no-energy predicts the other properties")
    results = []
    for record, outputs in zip(records, _per_structure_outputs(
            model, records, forces, batch_size, stress=stress, uncertainty=uncertainty)):
        if forces == "conservative":
            outputs[FORCES] = outputs.pop(CONSERVATIVE_FORCES)
        if not record.is_periodic:
            outputs.pop("stress", None)  # a molecule has no volume, hence no stress
        if not energy:
            outputs.pop(ENERGY, None)
            outputs.pop(ENERGY + UNCERTAINTY_SUFFIX, None)
        if ENERGY in outputs:
            outputs[ENERGY] = float(outputs[ENERGY])
        results.append(outputs)
    return results


def predictions_and_targets(model, records: Sequence[Record], forces: str | None = None,
                            batch_size: int = 64) -> dict[str, Comparison]:
    """Comparisons for every label the data carries (keys as in ``Comparison``)."""
    return evaluate_and_compare(model, records, forces, batch_size)[1]


def evaluate(model, records: Sequence[Record], forces: str | None = None,
             batch_size: int = 64) -> dict[str, float | int]:
    """Metrics of ``model`` on ``records`` (units in METRIC_UNITS); ``forces`` picks the
    force prediction compared with the labels: the direct head or -dE/dR.
    """
    return evaluate_and_compare(model, records, forces, batch_size)[0]


def evaluate_and_compare(model, records: Sequence[Record], forces: str | None = None,
                         batch_size: int = 64, check=None) -> tuple[dict, dict[str, Comparison]]:
    """``evaluate`` and ``predictions_and_targets`` from one pass of the model; ``check``
    (a tridft.data.domain.DomainCheck) sees every structure's outputs."""
    forces = _force_source(model, forces)
    check_energy_support(model_support(model), [r for r in records if r.energy is not None],
                         "--keys energy=none evaluates the other labels")
    outputs = list(_per_structure_outputs(model, records, "both", batch_size))
    if check is not None:  # a DomainCheck: refuse non-finite, note extrapolation
        check.predictions(records, outputs)
    pairs = _compare(records, outputs, forces)
    metrics: dict[str, float | int] = {
        "n_structures": len(records),
        "n_atoms": int(sum(r.n_atoms for r in records)),
    }
    if ENERGY in pairs:
        metrics["energy_mae"] = pairs[ENERGY].mae()
        metrics["energy_rmse"] = pairs[ENERGY].rmse()
        metrics["energy_mae_per_atom"] = pairs["energy_per_atom"].mae()
    if FORCES in pairs:
        metrics["forces_mae"] = pairs[FORCES].mae()
        metrics["forces_rmse"] = pairs[FORCES].rmse()
        # Both force estimates, whichever one ``forces`` picked for forces_mae.
        for source, key in (("direct", FORCES), ("conservative", CONSERVATIVE_FORCES)):
            if key not in outputs[0]:
                continue
            both = _compare_forces(records, outputs, key)
            metrics[f"{source}_forces_mae"] = both.mae()
            metrics[f"{source}_forces_rmse"] = both.rmse()
    if POLARIZABILITY in pairs:
        pair = pairs[POLARIZABILITY]
        metrics["polarizability_mae"] = pair.mae()
        metrics["polarizability_rmse"] = pair.rmse()
        isotropic = np.trace(pair.errors, axis1=1, axis2=2) / 3  # (K,) A^3
        metrics["polarizability_iso_mae"] = float(np.mean(np.abs(isotropic)))
    for name, pair in pairs.items():
        if name not in (ENERGY, "energy_per_atom", FORCES, POLARIZABILITY):
            metrics[f"{name}_mae"] = pair.mae()
            metrics[f"{name}_rmse"] = pair.rmse()
    if FORCES in outputs[0] and CONSERVATIVE_FORCES in outputs[0]:
        direct = np.concatenate([o[FORCES] for o in outputs])
        conservative = np.concatenate([o[CONSERVATIVE_FORCES] for o in outputs])
        metrics.update(consistency_error(torch.from_numpy(direct),
                                         torch.from_numpy(conservative)))
    return metrics, pairs


# --- running the model ------------------------------------------------------------------


def _force_source(model, forces: str | None) -> str:
    """``forces``, or (None) the force source the model was trained for; InputError for
    -dE/dR of a model without an energy head."""
    if forces is None:
        from tridft.model.persistence import trained_force_source

        forces = trained_force_source(model)
    if forces not in FORCE_SOURCES:
        raise ValueError(f"forces must be one of {FORCE_SOURCES}, not '{forces}'")
    if forces == "conservative" and ENERGY not in getattr(model, "heads", {ENERGY: None}):
        raise InputError("the model has no energy head (it was trained without energies "
                         "or forces): it predicts no conservative forces")
    return forces


def _per_structure_outputs(model, records: Sequence[Record], mode: str, batch_size: int,
                           stress: bool = False,
                           uncertainty: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """The model's outputs split into one dict of numpy arrays per structure, in order.

    ``mode`` is the model's force mode ("direct", "conservative" or "both"); ``stress``
    and ``uncertainty`` add those outputs (tridft.model.inference).
    """
    if len(records) == 0:
        raise InputError("no structures to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    check_elements(model, records)
    dtype, device = _dtype_and_device(model)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(records), batch_size):
            chunk = records[start:start + batch_size]
            batch = collate(chunk, model.cutoff, dtype=dtype).to(device)
            if stress or uncertainty:
                outputs = run_model(model, batch, forces=mode, stress=stress,
                                    uncertainty=uncertainty)
            else:
                with torch.no_grad():  # the model turns gradients back on for -dE/dR only
                    outputs = model(batch, forces=mode)
            yield from _split_by_structure(model, outputs, [r.n_atoms for r in chunk])
    finally:
        model.train(was_training)


def _dtype_and_device(model) -> tuple[torch.dtype, torch.device]:
    parameter = next(iter(model.parameters()), None)
    if parameter is None:
        return torch.get_default_dtype(), torch.device("cpu")
    return parameter.dtype, parameter.device


def _split_by_structure(model, outputs: dict[str, torch.Tensor],
                        n_atoms: list[int]) -> list[dict[str, np.ndarray]]:
    per_structure: list[dict[str, np.ndarray]] = [{} for _ in n_atoms]
    for name, tensor in outputs.items():
        if name in _NOT_PREDICTIONS:
            continue
        values = tensor.detach().cpu().double().numpy()
        if _level(model, name) == "atom":
            parts = np.split(values, np.cumsum(n_atoms)[:-1])
        else:
            parts = list(values)
        for structure, part in zip(per_structure, parts):
            structure[name] = part
    return per_structure


def _level(model, name: str) -> str:
    """"atom" or "structure": whether output ``name`` has one row per atom or per structure."""
    if name in _KNOWN_LEVELS:
        return _KNOWN_LEVELS[name]
    heads = getattr(model, "heads", {})
    if name.endswith(UNCERTAINTY_SUFFIX):  # the uncertainty of a head has the head's level
        name = name[:-len(UNCERTAINTY_SUFFIX)]
    return heads[name].level if name in heads else "structure"


# --- predictions against labels -----------------------------------------------------------


def _compare(records: Sequence[Record], outputs: list[dict[str, np.ndarray]],
             forces: str) -> dict[str, Comparison]:
    force_key = FORCES if forces == "direct" else CONSERVATIVE_FORCES
    if force_key == FORCES and outputs and FORCES not in outputs[0]:
        force_key = CONSERVATIVE_FORCES  # no direct head (trained on -dE/dR alone)
    pairs: dict[str, Comparison] = {}

    def add(name: str, predicted: list, target: list) -> None:
        if target:
            pairs[name] = Comparison(np.stack(predicted), np.stack(target))

    labelled = [(r, o) for r, o in zip(records, outputs)
                if r.energy is not None and ENERGY in o]
    add(ENERGY, [o[ENERGY] for _, o in labelled], [r.energy for r, _ in labelled])
    add("energy_per_atom", [o[ENERGY] / r.n_atoms for r, o in labelled],
        [r.energy / r.n_atoms for r, _ in labelled])

    if any(r.forces is not None for r in records) and force_key in outputs[0]:
        pairs[FORCES] = _compare_forces(records, outputs, force_key)

    labelled = [(r, o) for r, o in zip(records, outputs)
                if r.polarizability is not None and POLARIZABILITY in o]
    add(POLARIZABILITY, [o[POLARIZABILITY] for _, o in labelled],
        [r.polarizability for r, _ in labelled])

    extra_heads = [name for name in outputs[0] if name not in _KNOWN_LEVELS]
    for name in extra_heads:  # dipole and any head added later, against labels of its name
        labelled = [(r, o) for r, o in zip(records, outputs) if r.label(name) is not None]
        if labelled:
            pairs[name] = Comparison(  # flat components: per-atom heads vary in length
                np.concatenate([np.ravel(o[name]) for _, o in labelled]),
                np.concatenate([np.ravel(r.label(name)) for r, _ in labelled]))
    return pairs


def _compare_forces(records: Sequence[Record], outputs: list[dict[str, np.ndarray]],
                    key: str) -> Comparison:
    """Output ``key`` (direct or conservative forces) against the force labels."""
    labelled = [(r, o) for r, o in zip(records, outputs) if r.forces is not None]
    return Comparison(np.concatenate([o[key] for _, o in labelled]),
                      np.concatenate([r.forces for r, _ in labelled]))
