"""The model's forward pass traced once per structure, for the many calls of MD.

A 9-atom molecule spends most of an eager forward pass in Python (module calls,
dataclasses, dispatch), not in arithmetic: a TorchScript trace of the same
pass runs about twice as fast on a CPU. The trace takes the geometry that changes
during MD (positions, cell, neighbour pairs and their cell shifts) as inputs and
bakes in the rest (atomic numbers, periodicity), so it is kept per structure
(``TracedForward.matches``). Conservative forces differentiate the traced energy
with autograd, exactly as they differentiate the eager one.

The first call compares the trace with the eager model on the same batch and
falls back to the eager model, with a log message, if they differ.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.model import ENERGY

logger = logging.getLogger(__name__)


class _Forward(nn.Module):
    """(positions, cell, edge_index, cell_shifts) -> the model's outputs as a tuple."""

    def __init__(self, model: nn.Module, template: Batch, names: list[str]):
        super().__init__()
        self.model = model
        self.template = template
        self.names = names

    def forward(self, positions, cell, edge_index, cell_shifts):
        batch = replace(self.template, positions=positions, cell=cell, edge_index=edge_index,
                        cell_shifts=cell_shifts)
        outputs = self.model(batch, forces="direct")
        return tuple(outputs[name] for name in self.names)


class TracedForward:
    """The model's direct-mode outputs for batches of one structure, traced.

    ``__call__(batch, conservative)`` returns the outputs dict of ``model(batch, forces=...)``
    ("direct" or "both") or None when the trace cannot be used (then use the model).
    """

    def __init__(self, model: nn.Module, batch: Batch):
        self.numbers = batch.numbers.clone()
        self.pbc = batch.pbc.clone()
        periodic = bool(batch.pbc.any())  # the model leaves molecule-only heads out
        self.names = [name for name, head in model.heads.items() if head.periodic or not periodic]
        self.module = None
        wrapper = _Forward(model, batch, self.names)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings about baked-in constants
                self.module = torch.jit.trace(wrapper, _inputs(batch), check_trace=False)
                expected = wrapper(*_inputs(batch))
                traced = self.module(*_inputs(batch))
            if not all(torch.allclose(a, b, rtol=1e-5, atol=1e-6)
                       for a, b in zip(expected, traced)):
                raise RuntimeError("the trace disagrees with the model")
        except Exception as error:  # any failure: the eager model still works
            logger.info("running the model untraced (%s)", error)
            self.module = None

    def matches(self, batch: Batch) -> bool:
        return (self.module is not None and torch.equal(batch.numbers, self.numbers)
                and torch.equal(batch.pbc, self.pbc))

    def __call__(self, batch: Batch, conservative: bool) -> dict[str, torch.Tensor]:
        conservative = conservative and ENERGY in self.names
        positions = batch.positions.detach().requires_grad_(conservative)
        inputs = (positions,) + _inputs(batch)[1:]
        with torch.set_grad_enabled(conservative):
            values = self.module(*inputs)
            outputs = dict(zip(self.names, values))
            if conservative:
                (gradient,) = torch.autograd.grad(outputs[ENERGY].sum(), positions)
                outputs["conservative_forces"] = -gradient
        return {name: value.detach() for name, value in outputs.items()}


def _inputs(batch: Batch) -> tuple[torch.Tensor, ...]:
    return batch.positions, batch.cell, batch.edge_index, batch.cell_shifts
