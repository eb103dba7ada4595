"""One evaluation of a trained model with the outputs that need more than a forward pass.

    outputs = run_model(model, batch, forces="direct", stress=True, uncertainty=True)

Besides the model's own outputs (see tridft.model.model) it can add

    conservative_forces   (N, 3)     eV/Angstrom    -dE/dR (forces "conservative" or "both")
    stress                (S, 3, 3)  eV/Angstrom^3  (1/V) dE/d(strain), ASE's sign; zero
                                                    for molecules (tridft.model.stress)
    <head>_uncertainty    (S,) or (N,)              calibrated LLPR standard deviations
    <head>_uncertainty_max (S,)                     for per-atom heads (forces)
                                                    (tridft.uncertainty.llpr)

Conservative forces and stress come from one backward pass of the energy. The
uncertainties need the model's calibration (``model.uncertainty``, fitted at the end
of training); a model without it raises UncertaintyUnavailable. Outputs are detached:
this is for inference, not training.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import torch

from tridft.data.batch import Batch
from tridft.errors import TriDFTError
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES
from tridft.model.stress import stress_from_gradient, strained, zero_strain

STRESS = "stress"


class UncertaintyUnavailable(TriDFTError):
    """The model file carries no uncertainty calibration."""


def calibration_of(model):
    """The model's LLPR calibration, or UncertaintyUnavailable."""
    llpr = getattr(model, "uncertainty", None)
    if llpr is None:
        raise UncertaintyUnavailable(
            "the model carries no uncertainty calibration (train it with this version of "
            "tridft, or add one with `tridft calibrate`)")
    return llpr


def run_model(model, batch: Batch, forces: str = "direct", stress: bool = False,
              uncertainty: bool = False) -> dict[str, torch.Tensor]:
    """The model's outputs on ``batch`` plus stress and uncertainties when asked (detached)."""
    if forces not in ("direct", "conservative", "both"):
        raise ValueError(f"forces must be direct, conservative or both, not '{forces}'")
    if not stress and not uncertainty:
        with torch.no_grad():
            return {k: v.detach() for k, v in model(batch, forces=forces).items()}
    llpr = calibration_of(model) if uncertainty else None
    want_forces = forces in ("conservative", "both")
    with torch.enable_grad():
        positions = batch.positions.detach().requires_grad_(want_forces or stress)
        batch = replace(batch, positions=positions)
        strain = zero_strain(batch) if stress else None
        deformed = strained(batch, strain) if stress else batch
        with (llpr.probe(model, deformed) if llpr is not None else nullcontext()) as probe:
            outputs = model(deformed, forces="direct")
            if want_forces or stress:
                inputs = [positions] + ([strain] if stress else [])
                gradients = torch.autograd.grad(outputs[ENERGY].sum(), inputs,
                                                retain_graph=llpr is not None)
                if want_forces:
                    outputs[CONSERVATIVE_FORCES] = -gradients[0]
                if stress:
                    outputs[STRESS] = stress_from_gradient(gradients[1], batch)
            if llpr is not None:
                outputs.update(llpr.uncertainties(probe.jacobians(outputs), batch))
    if forces == "conservative":
        outputs.pop(FORCES, None)
    return {k: v.detach() for k, v in outputs.items()}
