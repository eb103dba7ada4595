"""One evaluation of a trained model with the outputs that need more than a forward pass.

    outputs = run_model(model, batch, forces="direct", stress=True, uncertainty=True)

Besides the model's own outputs (see tridft.model.model) it can add

    conservative_forces   (N, 3)     eV/Angstrom    -dE/dR (forces "conservative" or "both")
    stress                (S, 3, 3)  eV/Angstrom^3  (1/V) dE/d(strain), ASE's sign; zero
                                                    for molecules (tridft.model.stress)
    <head>_uncertainty    (S,) or (N,)              calibrated standard deviations
    <head>_uncertainty_max (S,)                     for per-atom heads (forces)
                                                    (tridft.uncertainty.llpr)

Conservative forces, stress and the force uncertainty share one backward pass of
the energy. The uncertainties need the model's calibration (``model.uncertainty``,
fitted at the end of training); a model without it raises UncertaintyUnavailable.
Outputs are detached: this is for inference, not training.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace

import torch

from tridft.data.batch import Batch
from tridft.errors import TriDFTError
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES
from tridft.model.stress import stress_from_gradient, strained, zero_strain
from tridft.uncertainty.llpr import captured_latent, head_jacobians

STRESS = "stress"
FORCE_MODES = ("direct", "conservative", "both")


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
    if forces not in FORCE_MODES:
        raise ValueError(f"forces must be one of {FORCE_MODES}, not '{forces}'")
    if not stress and not uncertainty:
        with torch.no_grad():  # the model turns gradients on itself for -dE/dR
            return {k: v.detach() for k, v in model(batch, forces=forces).items()}
    llpr = calibration_of(model) if uncertainty else None
    needs_conservative = llpr is not None and CONSERVATIVE_FORCES in llpr.partners()
    mode = "both" if forces == "direct" and needs_conservative else forces
    outputs, jacobians = forward_with_jacobians(
        model, batch, mode, stress, llpr.probed_layers() if llpr is not None else {})
    if llpr is not None:
        outputs.update(llpr.uncertainties(jacobians, batch, outputs))
    if forces == "conservative":
        outputs.pop(FORCES, None)
    if mode != forces:
        outputs.pop(CONSERVATIVE_FORCES, None)
    return outputs


def forward_with_jacobians(model, batch: Batch, forces: str, stress: bool,
                           layers: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """(outputs, LLPR Jacobians of ``layers``): the direct forces are always among the
    outputs; conservative forces when ``forces`` is "conservative" or "both"."""
    want_forces = forces in ("conservative", "both")
    with torch.enable_grad():
        positions = batch.positions.detach().requires_grad_(want_forces or stress)
        batch = replace(batch, positions=positions)
        strain = zero_strain(batch) if stress else None
        deformed = strained(batch, strain) if stress else batch
        with (captured_latent(model) if layers else nullcontext()) as captured:
            outputs = model(deformed, forces="direct")
        if want_forces or stress:
            inputs = [positions] + ([strain] if stress else [])
            gradients = torch.autograd.grad(outputs[ENERGY].sum(), inputs)
            if want_forces:
                outputs[CONSERVATIVE_FORCES] = -gradients[0]
            if stress:
                outputs[STRESS] = stress_from_gradient(gradients[1], batch)
    jacobians = head_jacobians(model, captured["latent"], deformed, layers) if layers else {}
    return {k: v.detach() for k, v in outputs.items()}, jacobians
