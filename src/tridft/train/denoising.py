"""Denoising as an auxiliary task (after Noisy Nodes, Godwin et al. 2022).

Every training batch is passed twice: as it is, for the property losses, and as a copy
whose atoms are displaced by Gaussian noise of standard deviation ``sigma``
(Angstrom), from whose latent a small equivariant readout learns to point back: it
predicts the displacement divided by sigma. The shared latent must then encode where
each atom sits relative to its neighbours, beyond what the few labels ask for: a
regulariser aimed at the gap between training and unseen molecules.

    denoiser = Denoiser(model, sigma=0.02)
    outputs = model(batch)                        # the property losses, as without it
    losses = objective(outputs, batch, step)
    denoiser.add_loss(losses, model, batch, weight=0.01)   # the second pass, a regulariser

which is, spelled out:

    noisy, target = denoiser.perturb(batch)       # (N, 3) target, unit variance
    model.latent(noisy)                           # the latent is caught on the way
    loss = denoiser.loss(target)                  # mean squared error per component

Why a copy: displacing the atoms of the batch itself would leave every label at the
undisplaced geometry. Measured on QM7b, that label noise (a dipole moves by
sum_i q_i * displacement_i, ~0.02 e*A at sigma = 0.02 A) cost more than denoising gave;
the copy costs a forward and backward pass of the model instead (~1.5x the step time).

The readout lives beside the model, not in it: model files never carry it, and
training checkpoints save its weights (``state_dict``) so that a resumed run goes on
with the same readout.
"""

from __future__ import annotations

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.bottleneck import Latent
from tridft.model.extra_heads import AtomVectorReadout
from tridft.train.displaced import displaced_copy
from tridft.train.losses import Losses

DENOISING = "denoising"


class Denoiser(nn.Module):
    """The displacement readout of the latent, and the noise it undoes."""

    def __init__(self, model: nn.Module, sigma: float):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"the denoising noise must be positive, not {sigma}")
        config = model.config
        self.sigma = float(sigma)  # Angstrom
        self.readout = AtomVectorReadout(config.latent_scalar_width,
                                         config.latent_vector_width, config.head_hidden)
        self._latent: Latent | None = None
        # Catch the latent of every forward pass of the model: the loss reads the last.
        model.bottleneck.register_forward_hook(self._catch_latent)

    def _catch_latent(self, module, inputs, latent: Latent) -> None:
        self._latent = latent

    def perturb(self, batch: Batch) -> tuple[Batch, torch.Tensor]:
        """``batch`` with displaced positions, and the target displacement / sigma (N, 3)
        (train/displaced.py: the neighbour list stays that of the undisplaced structure)."""
        return displaced_copy(batch, self.sigma)

    def prediction(self) -> torch.Tensor:
        """(N, 3): the displacement / sigma read from the latent of the model's last
        forward pass (equivariant: it turns with the structure)."""
        if self._latent is None:
            raise RuntimeError("the model has not run since the last denoising loss")
        return self.readout(self._latent)

    def add_loss(self, losses: Losses, model: nn.Module, batch: Batch, weight: float) -> None:
        """Pass a displaced copy of ``batch`` through ``model`` and add its denoising loss
        to ``losses`` as the regulariser ``DENOISING`` with ``weight``."""
        noisy, target = self.perturb(batch)
        model.latent(noisy)
        losses.regularizers[DENOISING] = self.loss(target)
        losses.regularizer_weights[DENOISING] = weight

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        """Mean over atoms and components of (prediction - target)^2, for the last forward
        pass of the model; one loss per pass."""
        prediction = self.prediction().to(target.dtype)  # (N, 3)
        self._latent = None
        return ((prediction - target) ** 2).mean()
