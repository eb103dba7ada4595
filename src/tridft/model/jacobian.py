"""The physics (Jacobian) regularizer: direct forces should equal -dE/dR.

A loss term without a target: it compares two predictions of the same model.
"""

from __future__ import annotations

import torch


def jacobian_penalty(direct_forces: torch.Tensor, conservative_forces: torch.Tensor,
                     scale: float = 1.0) -> torch.Tensor:
    """Mean over atoms and components of ((F_direct - F_cons) / scale)^2; inputs (N, 3) eV/A.

    Both sides carry gradients: the direct head is pulled towards the energy
    gradient and the energy surface towards the direct forces.
    """
    return (((direct_forces - conservative_forces) / scale) ** 2).mean()


def consistency_error(direct_forces: torch.Tensor,
                      conservative_forces: torch.Tensor) -> dict[str, float]:
    """Mean and max over atoms of |F_direct - F_cons| = |F_direct + dE/dR|, in eV/Angstrom."""
    norms = torch.linalg.norm((direct_forces - conservative_forces).detach(), dim=-1)
    if norms.numel() == 0:
        return {"jacobian_consistency_mae": 0.0, "jacobian_consistency_max": 0.0}
    return {"jacobian_consistency_mae": float(norms.mean()),
            "jacobian_consistency_max": float(norms.max())}
