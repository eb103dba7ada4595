"""An exponential moving average of the model's weights, used for validation and the saved model.

    ema = ExponentialMovingAverage(model, decay=0.99)
    ...  optimizer.step(); ema.update(model)
    evaluate(ema.model, ...)

Early in training the effective decay is min(decay, (1 + n) / (10 + n)) after n
updates, so the average is not dominated by the random initial weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ExponentialMovingAverage:
    """A frozen copy of ``model`` whose parameters follow the model's with ``decay``."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self._averaged = list(self.model.parameters())
        # The followed model's tensors, listed once: walking a model's modules for its
        # parameters and buffers costs ~2 ms a step, as much as the update itself.
        self._source: nn.Module | None = None
        self._current: list[nn.Parameter] = []  # (not detached copies: .data may be reset)
        self._buffers: list[tuple[torch.Tensor, torch.Tensor]] = []

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if model is not self._source:
            self._source = model
            self._current = list(model.parameters())
            self._buffers = list(zip(self.model.buffers(), model.buffers()))
        decay = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        torch._foreach_lerp_(self._averaged, self._current, 1.0 - decay)  # one kernel per group
        for averaged, buffer in self._buffers:
            averaged.copy_(buffer)  # statistics buffers are not averaged
        self.updates += 1

    def state_dict(self) -> dict:
        return {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
