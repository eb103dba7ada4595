"""Small models and labelled ethanol structures for the transfer tests."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import torch

from tests.physics.helpers import ETHANOL_FILE, model_dtype, perturbed_model
from tridft.data.batch import Batch, collate
from tridft.data.io import read_structures
from tridft.data.record import Record
from tridft.model.model import TriDFTModel

ORIGINAL_HEADS = ("energy", "forces", "polarizability")


@lru_cache(maxsize=None)
def _ethanol_records() -> tuple[Record, ...]:
    return tuple(read_structures(ETHANOL_FILE)[:48])


def ethanol_records(n: int) -> list[Record]:
    """The first ``n`` (at most 48) bundled ethanol structures with all their labels."""
    return list(_ethanol_records()[:n])


def only_dipoles(records: list[Record]) -> list[Record]:
    """The same structures carrying a dipole and none of the original labels."""
    return [replace(r, energy=None, forces=None, polarizability=None) for r in records]


def tiny_model(seed: int = 0) -> TriDFTModel:
    """A float64 model with weights moved off their initialisation, in eval mode."""
    return perturbed_model(seed=seed)


def batch_of(model: TriDFTModel, records: list[Record]) -> Batch:
    return collate(records, model.cutoff, dtype=model_dtype(model))


def original_outputs(model: TriDFTModel, batch: Batch) -> dict[str, torch.Tensor]:
    """The original heads' outputs (and -dE/dR) for ``batch``, detached."""
    outputs = model(batch, forces="both")
    return {key: outputs[key].detach()
            for key in ORIGINAL_HEADS + ("conservative_forces", "latent_kl")}
