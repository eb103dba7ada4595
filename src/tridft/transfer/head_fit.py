"""The loop that fits a new head on a trained model, with the trainer's schedule and stopping.

    with trainable(model, head, freeze) as pretrained:   # what learns besides the head
        result = HeadFit(model, head, target, dataset, train_indices, validation_indices,
                         options, pretrained, dtype).run(progress=True)

Shuffled minibatches, AdamW, the learning rate on the cosine of
:class:`tridft.train.schedule.LearningRateSchedule` (each parameter group's rate down
to ``FINAL_LR_RATIO`` of it at the last step), validation every ``validate_every``
steps, and :class:`tridft.train.limits.EarlyStopping`: the weights of the best
validation are kept, and ``patience`` validations without improvement end the fit.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tridft.data.dataset import GraphDataset
from tridft.model.heads import Head
from tridft.model.model import TriDFTModel
from tridft.train.limits import EarlyStopping
from tridft.train.schedule import LearningRateSchedule
from tridft.transfer.latents import LatentSource, evaluate_target
from tridft.transfer.targets import Target, masked_residuals

if TYPE_CHECKING:
    from tridft.transfer.finetune import FinetuneOptions

DEFAULT_STEPS = 1000
# Cosine learning-rate decay ends at lr * this.
FINAL_LR_RATIO = 0.02
# Validate at least this many steps apart (tiny sets have one-step epochs).
MIN_VALIDATION_INTERVAL = 10

# Pre-trained modules that learn too (at lr * pretrained_lr_factor), per freeze mode.
RELEASED_MODULES = {"latent": (), "backbone": ("bottleneck",), "none": ("backbone", "bottleneck")}


@contextmanager
def trainable(model: TriDFTModel, head: Head, freeze: str) -> Iterator[list[nn.Parameter]]:
    """Only the new head and the modules ``freeze`` releases get gradients inside the block
    (yields the released pre-trained parameters); every requires_grad flag is restored."""
    saved = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    try:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        for parameter in head.parameters():
            parameter.requires_grad_(True)
        pretrained = [p for name in RELEASED_MODULES[freeze]
                      for p in getattr(model, name).parameters()]
        for parameter in pretrained:
            parameter.requires_grad_(True)
        yield pretrained
    finally:
        for parameter, flag in saved:
            parameter.requires_grad_(flag)


class HeadFit:
    """The training of a new head, step by step, with validation and early stopping."""

    def __init__(self, model: TriDFTModel, head: Head, target: Target, dataset: GraphDataset,
                 train_indices: list[int], validation_indices: list[int],
                 options: FinetuneOptions, pretrained: list[nn.Parameter],
                 dtype: torch.dtype):
        self.model, self.head, self.target, self.options = model, head, target, options
        self.train_indices, self.validation_indices = train_indices, validation_indices
        self.source = LatentSource(model, dataset, dtype, frozen=not pretrained)
        self.loss_scale = target.loss_scale([dataset[i] for i in train_indices])
        groups = [{"params": list(head.parameters()), "lr": options.lr}]
        if pretrained:
            groups.append({"params": pretrained, "lr": options.lr * options.pretrained_lr_factor})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
        self.base_lrs = [group["lr"] for group in groups]
        # What early stopping keeps: every module that learns.
        self.learning = [head] + ([model.backbone, model.bottleneck] if pretrained else [])
        steps_per_epoch = math.ceil(len(train_indices) / options.batch_size)
        self.steps = options.steps or (options.epochs * steps_per_epoch if options.epochs
                                       else DEFAULT_STEPS)
        self.validate_every = options.validate_every or max(steps_per_epoch,
                                                            MIN_VALIDATION_INTERVAL)
        # A factor of each group's rate: 1 at the first step (0), FINAL_LR_RATIO at the last.
        self.schedule = LearningRateSchedule.cosine(self.steps - 1, FINAL_LR_RATIO)
        self.generator = torch.Generator().manual_seed(options.seed)

    def run(self, progress: bool) -> dict:
        """Fit, keep the best validated weights; the fields of a FinetuneResult it fills."""
        initial = evaluate_target(self.model, self.target, self.source, self.validation_indices)
        stopping = EarlyStopping(self.options.patience, best_score=initial["mae"])
        best, best_state = initial, self._snapshot()
        history, running, step = [], [], 0
        bar = tqdm(total=self.steps, desc=f"finetune {self.target.name}", unit="step",
                   disable=not progress, leave=False)
        batches = self._training_batches()
        for step in range(1, self.steps + 1):
            self._set_lr(step)
            running.append(self._train_step(next(batches)))
            bar.update(1)
            if step % self.validate_every and step != self.steps:
                continue
            metrics = evaluate_target(self.model, self.target, self.source,
                                      self.validation_indices)
            history.append((step, float(np.mean(running)), metrics["mae"]))
            running = []
            if stopping.update(metrics["mae"], step):
                best, best_state = metrics, self._snapshot()
            bar.set_postfix(val_mae=f"{metrics['mae']:.4g}", best=f"{best['mae']:.4g}")
            if stopping.should_stop:
                break
        bar.close()
        self._restore(best_state)
        return {"validation": best, "initial_validation": initial,
                "best_step": stopping.best_step, "steps": step,
                "stopped_early": stopping.should_stop, "history": history}

    def _training_batches(self):
        """Endless shuffled minibatches of training indices, reshuffled every epoch."""
        indices = torch.as_tensor(self.train_indices)
        while True:
            order = indices[torch.randperm(len(indices), generator=self.generator)].tolist()
            for start in range(0, len(order), self.options.batch_size):
                yield order[start:start + self.options.batch_size]

    def _train_step(self, indices: list[int]) -> float:
        latent, batch = self.source(indices)
        prediction = self.head(latent, batch)
        values, mask = self.target.labels(batch)
        loss = (masked_residuals(prediction, values, mask) / self.loss_scale).pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def _set_lr(self, step: int) -> None:
        """Step ``step`` (from 1) of the cosine, times each group's base learning rate."""
        factor = self.schedule.lr(step - 1)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def _snapshot(self) -> list[dict]:
        return [{k: v.detach().clone() for k, v in module.state_dict().items()}
                for module in self.learning]

    def _restore(self, state: list[dict]) -> None:
        for module, module_state in zip(self.learning, state):
            module.load_state_dict(module_state)
