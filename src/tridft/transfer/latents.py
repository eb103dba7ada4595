"""The latent of labelled structures for a new head, computed once when it cannot change.

    source = LatentSource(model, dataset, dtype, frozen=True)   # every latent computed once
    latent, batch = source([0, 3, 7])                          # a batch and its latent
    evaluate_target(model, target, source, validation_indices) # {"mae", "rmse", "n"}

With backbone and bottleneck frozen (fine-tuning's default) a structure's latent is the
same at every step, so it is computed once, without gradients, and reused; otherwise
each batch runs through the model.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from tridft.data.batch import Batch
from tridft.data.dataset import GraphDataset
from tridft.model.bottleneck import Latent
from tridft.model.model import TriDFTModel
from tridft.transfer.targets import Target, masked_residuals

# Structures per forward pass when computing latents or evaluating.
EVALUATION_BATCH = 64


class LatentSource:
    """(latent, batch) for structures of a dataset.

    With ``frozen`` the latent of every structure is computed once (no gradient) and
    cut per structure; a batch's latent is then the concatenation of its structures'.
    """

    def __init__(self, model: TriDFTModel, dataset: GraphDataset, dtype: torch.dtype,
                 frozen: bool):
        self.model, self.dataset, self.dtype = model, dataset, dtype
        self.device = next(model.parameters()).device
        self.cache: list[Latent] | None = None
        if frozen:
            self.cache = []
            with torch.no_grad():
                for start in range(0, len(dataset), EVALUATION_BATCH):
                    indices = range(start, min(start + EVALUATION_BATCH, len(dataset)))
                    batch = dataset.collate(indices, dtype=dtype).to(self.device)
                    self.cache.extend(_split_latent(model.latent(batch),
                                                    batch.n_atoms.tolist()))

    def __call__(self, indices: Sequence[int]) -> tuple[Latent, Batch]:
        batch = self.dataset.collate(indices, dtype=self.dtype).to(self.device)
        if self.cache is None:
            return self.model.latent(batch), batch
        return _concatenate_latents([self.cache[i] for i in indices]), batch


def _split_latent(latent: Latent, sizes: list[int]) -> list[Latent]:
    def cut(tensor):
        return [None] * len(sizes) if tensor is None else tensor.split(sizes)

    return [Latent(*parts) for parts in zip(cut(latent.scalars), cut(latent.vectors),
                                            cut(latent.mean), cut(latent.log_var),
                                            cut(latent.tensors))]


def _concatenate_latents(latents: list[Latent]) -> Latent:
    log_vars = [latent.log_var for latent in latents]
    tensors = [latent.tensors for latent in latents]
    return Latent(scalars=torch.cat([latent.scalars for latent in latents]),
                  vectors=torch.cat([latent.vectors for latent in latents]),
                  mean=torch.cat([latent.mean for latent in latents]),
                  log_var=None if log_vars[0] is None else torch.cat(log_vars),
                  tensors=None if tensors[0] is None else torch.cat(tensors))


def evaluate_target(model: TriDFTModel, target: Target, source: LatentSource | GraphDataset,
                    indices: Sequence[int] | None = None) -> dict[str, float]:
    """{"mae", "rmse", "n"} of ``model.heads[target.name]`` on labelled structures.

    ``source``: a LatentSource (reuses cached latents) or a GraphDataset.
    Errors are over label components, in the property's units.
    """
    if isinstance(source, GraphDataset):
        source = LatentSource(model, source, next(model.parameters()).dtype, frozen=False)
    indices = list(range(len(source.dataset))) if indices is None else list(indices)
    head = model.heads[target.name]
    residuals = []
    with torch.no_grad():
        for start in range(0, len(indices), EVALUATION_BATCH):
            latent, batch = source(indices[start:start + EVALUATION_BATCH])
            values, mask = target.labels(batch)
            residuals.append(masked_residuals(head(latent, batch), values, mask).reshape(-1))
    errors = torch.cat(residuals).double()
    if errors.numel() == 0:
        return {"mae": math.nan, "rmse": math.nan, "n": 0}
    return {"mae": float(errors.abs().mean()), "rmse": float(errors.pow(2).mean().sqrt()),
            "n": int(errors.numel())}
