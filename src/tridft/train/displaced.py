"""The Jacobian term between the training structures, on displaced copies.

The Jacobian term ties the direct force head to -dE/dR where it is evaluated: on the
training structures. Unseen structures lie between them. The term needs no labels, so
it can be evaluated anywhere: every training step also passes a copy of the batch, with
atoms displaced by Gaussian noise of width ``sigma``, and adds the Jacobian term of that
copy (benchmarks/consistency.py measures the disagreement on and off the training set).

    consistency = DisplacedConsistency(sigma=0.02, weight=2.0, scale=forces_rms)
    value = consistency.loss(model, batch)     # a forward pass with -dE/dR, create_graph
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch

from tridft.data.batch import Batch
from tridft.model.jacobian import jacobian_penalty
from tridft.model.model import CONSERVATIVE_FORCES
from tridft.train.losses import Losses

logger = logging.getLogger(__name__)

DISPLACED_JACOBIAN = "jacobian_displaced"


def displaced_copy(batch: Batch, sigma: float) -> tuple[Batch, torch.Tensor]:
    """``batch`` with every atom moved by Gaussian noise of width ``sigma`` (Angstrom), and
    that noise in units of sigma, (N, 3) of unit variance.

    The neighbour list stays that of the undisplaced structure: the cutoff envelope is
    zero beyond the cutoff, so a pair pushed out of it drops out smoothly, and one pushed
    in from just beyond it would carry a weight of ~(sigma/cutoff)^3."""
    noise = torch.randn_like(batch.positions)  # (N, 3)
    return replace(batch, positions=batch.positions + sigma * noise), noise


class DisplacedConsistency:
    """mean ((F_direct - (-dE/dR)) / scale)^2 over the atoms of a displaced copy."""

    def __init__(self, sigma: float, weight: float, scale: float):
        if sigma <= 0:
            raise ValueError(f"the displacement must be positive, not {sigma}")
        self.sigma = float(sigma)  # Angstrom
        self.weight = float(weight)
        self.scale = float(scale)  # eV/Angstrom: the force labels' RMS

    def loss(self, model, batch: Batch) -> torch.Tensor:
        copy, _ = displaced_copy(batch, self.sigma)
        outputs = model(copy, forces="both")
        return jacobian_penalty(outputs["forces"], outputs[CONSERVATIVE_FORCES], self.scale)

    def add_loss(self, losses: Losses, model, batch: Batch) -> None:
        """Add the term of a displaced copy of ``batch`` to ``losses`` as the regulariser
        ``DISPLACED_JACOBIAN`` (as Denoiser.add_loss does for its own)."""
        losses.regularizers[DISPLACED_JACOBIAN] = self.loss(model, batch)
        losses.regularizer_weights[DISPLACED_JACOBIAN] = self.weight


def displaced_consistency_for(sigma: float, jacobian_weight: float, forces_rms: float,
                              trains_minus_dE_dR: bool) -> DisplacedConsistency | None:
    """The displaced Jacobian term of ``training.consistency_noise`` (``sigma``, Angstrom),
    or None when it is 0, or when there is no Jacobian term to displace (no -dE/dR is
    trained, or ``loss.jacobian_weight`` is 0): then a warning says the option does nothing."""
    if sigma <= 0:
        return None
    if not trains_minus_dE_dR or jacobian_weight <= 0:
        why = "no -dE/dR is trained" if not trains_minus_dE_dR else "loss.jacobian_weight is 0"
        logger.warning("training.consistency_noise %g has no effect: %s, so there is no "
                       "Jacobian term to evaluate on displaced copies", sigma, why)
        return None
    return DisplacedConsistency(sigma, jacobian_weight, forces_rms)
