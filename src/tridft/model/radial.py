"""Radial basis and the smooth cutoff envelope."""

from __future__ import annotations

import math

import torch
from torch import nn


class PolynomialEnvelope(nn.Module):
    """u(d) = 1 - (p+1)(p+2)/2 d^p + p(p+2) d^(p+1) - p(p+1)/2 d^(p+2), d = r / cutoff.

    Goes to zero at the cutoff together with its first and second derivatives
    (Klicpera et al., DimeNet), so energies and forces are smooth as atoms cross it.
    """

    def __init__(self, cutoff: float, exponent: int = 5):
        super().__init__()
        self.cutoff = cutoff
        self.p = exponent

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        d = distances / self.cutoff
        p = self.p
        value = (1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1)
                 - p * (p + 1) / 2 * d ** (p + 2))
        return torch.where(d < 1, value, torch.zeros_like(value))


class BesselBasis(nn.Module):
    """sqrt(2/c) sin(n pi r / c) / r for n = 1..K: (E,) Angstrom -> (E, K)."""

    def __init__(self, cutoff: float, size: int):
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", torch.arange(1, size + 1) * math.pi / cutoff)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        r = distances.unsqueeze(-1)
        return math.sqrt(2 / self.cutoff) * torch.sin(self.frequencies * r) / r
