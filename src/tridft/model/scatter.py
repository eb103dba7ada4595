"""Sums over index groups (atoms -> structures, edges -> atoms) without extra dependencies."""

from __future__ import annotations

import torch


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[k] = sum of values[i] with index[i] == k; values (M, ...) -> (size, ...)."""
    out = values.new_zeros((size,) + values.shape[1:])
    return out.index_add_(0, index, values)
