"""The latent bottleneck shared by every head.

Backbone features (N, F) + (N, 3, F) are compressed per atom to a small latent:
scalars (N, Ls) that are variational (a Gaussian with learned mean and
log-variance, sampled while training, the mean at inference, with a KL penalty
towards N(0, 1)) and vectors (N, 3, Lv) from an equivariant linear map, gated by
the scalars. The KL of each channel measures how much information it carries.

With compression off the latent *is* the backbone output (no sampling, zero
KL): the plain shared-backbone multi-head model used as the ablation baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tridft.model.backbone import AtomFeatures

# The posterior's log-variance is kept in [LOG_VAR_MIN, LOG_VAR_MAX]. The upper bound 0:
# a posterior never wider than its N(0, 1) prior. The KL weight is small, so an atom in
# an environment seen rarely can drift to a large log-variance; with the former bound
# of 10 (sigma 148) one such sample, amplified by the heads' products of latent
# features, made a polarizability loss of 3e14 and undid 1000 steps of training on the
# QM7b molecules.
LOG_VAR_MIN, LOG_VAR_MAX = -10.0, 0.0


@dataclass
class Latent:
    """The public per-atom latent.

    scalars  (N, Ls)        invariant; a sample while training, the mean otherwise
    vectors  (N, 3, Lv)     equivariant
    mean     (N, Ls)        mean of the scalar posterior
    log_var  (N, Ls)        log-variance of the scalar posterior (None when not variational)
    tensors  (N, 3, 3, Lt)  symmetric traceless, rotate as R t R^T (None without them)
    """

    scalars: torch.Tensor
    vectors: torch.Tensor
    mean: torch.Tensor
    log_var: torch.Tensor | None
    tensors: torch.Tensor | None = None

    def kl_per_channel(self) -> torch.Tensor:
        """(N, Ls) KL(q(z|x) || N(0, 1)) in nats; zeros when not variational."""
        if self.log_var is None:
            return torch.zeros_like(self.mean)
        return 0.5 * (self.mean**2 + self.log_var.exp() - 1.0 - self.log_var)


class Bottleneck(nn.Module):
    """AtomFeatures -> Latent."""

    def __init__(self, features: int, latent_scalars: int, latent_vectors: int,
                 variational: bool = True, vector_gate: bool = True,
                 tensor_channels: int = 0, latent_tensors: int = 0):
        super().__init__()
        self.variational = variational
        self.to_mean = nn.Linear(features, latent_scalars)
        # Start with a small posterior variance so early training is not drowned in noise.
        self.to_log_var = nn.Linear(features, latent_scalars) if variational else None
        if self.to_log_var is not None:
            nn.init.constant_(self.to_log_var.bias, -4.0)
        self.to_vectors = nn.Linear(features, latent_vectors, bias=False)
        self.to_gate = nn.Linear(features, latent_vectors) if vector_gate else None
        # Rank-2 channels: a channel map (commutes with R t R^T) gated by the scalars.
        self.to_tensors = self.to_tensor_gate = None
        if latent_tensors:
            self.to_tensors = nn.Linear(tensor_channels, latent_tensors, bias=False)
            self.to_tensor_gate = nn.Linear(features, latent_tensors)

    def forward(self, x: AtomFeatures) -> Latent:
        mean = self.to_mean(x.scalars)
        log_var = None
        scalars = mean
        if self.to_log_var is not None:
            log_var = self.to_log_var(x.scalars).clamp(LOG_VAR_MIN, LOG_VAR_MAX)
            if self.training:
                scalars = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        vectors = self.to_vectors(x.vectors)  # (N, 3, Lv): a linear map commutes with rotation
        if self.to_gate is not None:
            vectors = vectors * torch.sigmoid(self.to_gate(x.scalars)).unsqueeze(1)
        tensors = None
        if self.to_tensors is not None:
            tensors = self.to_tensors(x.tensors) \
                * torch.sigmoid(self.to_tensor_gate(x.scalars))[:, None, None, :]
        return Latent(scalars=scalars, vectors=vectors, mean=mean, log_var=log_var,
                      tensors=tensors)


class IdentityBottleneck(nn.Module):
    """No compression: the backbone features are the latent (ablation baseline)."""

    variational = False

    def forward(self, x: AtomFeatures) -> Latent:
        return Latent(scalars=x.scalars, vectors=x.vectors, mean=x.scalars, log_var=None,
                      tensors=x.tensors)
