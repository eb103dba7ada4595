"""Training checkpoints: plain dicts of tensors and plain data, written atomically.

A checkpoint holds everything that decides what the next step does, so a run
resumed from it takes exactly the steps the uninterrupted run would have:

    model             persistence.model_to_dict (config, heads, state dict, metadata)
    optimizer         AdamW state
    schedule          learning-rate plateau state
    ema               averaged weights (absent when EMA is off)
    balancer          loss-balancing state (log-variances, GradNorm weights, ...)
    denoiser          the denoising readout's weights (absent without position noise)
    progress          TrainingProgress: step, epoch, position in the epoch and its
                      order, best score, early-stopping counter, elapsed time
    rng               torch (per process), CUDA, numpy, python and shuffle generators

It is read with ``torch.load(weights_only=True)``: loading never runs code.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from tridft.errors import CheckpointError
from tridft.model.persistence import atomic_torch_save, model_to_dict, safe_torch_load

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "tridft-checkpoint"
FORMAT_VERSION = 1


@dataclass
class TrainingProgress:
    """Where a run is. ``epoch_order`` is the shuffled order of the current epoch."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    epoch_order: list[int] = field(default_factory=list)
    best_score: float = float("inf")
    best_step: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    validations_without_improvement: int = 0
    elapsed_s: float = 0.0
    last_validated_step: int = -1
    typical_grad_norm: float = 0.0  # running average of clipped gradient norms (spikes.py)
    rollbacks: int = 0              # returns to a checkpoint after a non-finite loss ...
    lr_scale: float = 1.0           # ... each halving the learning rate from then on

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingProgress":
        return cls(**data)


def capture_rng(shuffle: torch.Generator, torch_states: list[torch.Tensor] | None = None) -> dict:
    """Every random state that training reads, as tensors and lists.

    ``torch_states``: the CPU torch states of all processes (data-parallel runs),
    default this process's only.
    """
    version, internal, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch_states if torch_states is not None else [torch.get_rng_state()],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "shuffle": shuffle.get_state(),
    }


def restore_rng(state: dict, shuffle: torch.Generator, rank: int = 0) -> None:
    """Inverse of ``capture_rng``; process ``rank`` takes its own torch state."""
    torch_states = state["torch"]
    torch.set_rng_state(torch_states[rank] if rank < len(torch_states) else torch_states[0])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32),
                         numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    shuffle.set_state(state["shuffle"])


def save_checkpoint(path: str | Path, *, model, optimizer, schedule, ema, balancer,
                    progress: TrainingProgress, rng: dict, metadata: dict | None = None,
                    denoiser=None) -> None:
    """Write the checkpoint atomically: the previous one stays whole until the rename."""
    atomic_torch_save({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model_to_dict(model, metadata),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "balancer": {k: v.detach().cpu() if torch.is_tensor(v) else v
                     for k, v in balancer.state_dict().items()},
        "progress": progress.to_dict(),
        "rng": rng,
        "denoiser": denoiser.state_dict() if denoiser is not None else None,
    }, path)


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict at ``path``; CheckpointError when it is missing or not one."""
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tridft training checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer tridft; upgrade tridft to resume")
    return payload


def restore(payload: dict, *, model, optimizer, schedule, ema, balancer,
            denoiser=None) -> TrainingProgress:
    """Load the states of ``payload`` into the given objects; return the progress."""
    model.load_state_dict(payload["model"]["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    if ema is not None:
        if payload["ema"] is None:
            raise CheckpointError("the checkpoint has no EMA weights but training.ema_decay > 0; "
                                  "resume with the configuration of the run")
        ema.load_state_dict(payload["ema"])
    balancer.load_state_dict(payload["balancer"])
    if denoiser is not None:
        if payload.get("denoiser") is None:
            raise CheckpointError("the checkpoint has no denoising readout but "
                                  "training.position_noise > 0; resume with the "
                                  "configuration of the run")
        denoiser.load_state_dict(payload["denoiser"])
    return TrainingProgress.from_dict(payload["progress"])
