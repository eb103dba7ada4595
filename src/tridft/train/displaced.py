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

from dataclasses import replace

import torch

from tridft.data.batch import Batch
from tridft.model.jacobian import jacobian_penalty
from tridft.model.model import CONSERVATIVE_FORCES

DISPLACED_JACOBIAN = "jacobian_displaced"


class DisplacedConsistency:
    """mean ((F_direct - (-dE/dR)) / scale)^2 over the atoms of a displaced copy."""

    def __init__(self, sigma: float, weight: float, scale: float):
        if sigma <= 0:
            raise ValueError(f"the displacement must be positive, not {sigma}")
        self.sigma = float(sigma)  # Angstrom
        self.weight = float(weight)
        self.scale = float(scale)  # eV/Angstrom: the force labels' RMS

    def loss(self, model, batch: Batch) -> torch.Tensor:
        # The neighbour list stays that of the undisplaced structure (see Denoiser.perturb).
        noise = torch.randn_like(batch.positions)  # (N, 3)
        copy = replace(batch, positions=batch.positions + self.sigma * noise)
        outputs = model(copy, forces="both")
        return jacobian_penalty(outputs["forces"], outputs[CONSERVATIVE_FORCES], self.scale)
