"""Data-parallel training over processes started by ``torchrun``.

Every process holds the whole model and the same global batch order; each takes
its contiguous share of every global batch (``Context.shard``). Loss
denominators are shared (``Context.average`` on the entry counts, see
train/losses.py), so that averaging the gradients over processes gives exactly
the gradient of one process on the whole global batch.

The gradients are averaged by hand (one all-reduce after the backward pass)
rather than by wrapping the model in DistributedDataParallel: the conservative
forces are themselves an autograd.grad with create_graph inside the forward
pass, which DDP's gradient hooks do not expect, and the loss balancers need
per-task gradients anyway.

Only rank 0 writes files, validates and shows progress. Launch with::

    torchrun --standalone --nproc_per_node 4 -m tridft.cli.main train CONFIG.yaml

(gloo on CPU, nccl on GPU; see docs/training.md for several nodes).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass
class Context:
    """This process's place in the run: rank among world_size processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_process_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: Sequence[int]) -> list[int]:
        """This process's contiguous share of a global batch (sizes differ by at most one)."""
        return np.array_split(np.asarray(indices), self.world_size)[self.rank].tolist()

    def average(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean of ``tensor`` over processes (a new tensor, no gradient); itself if alone."""
        if not self.is_distributed:
            return tensor
        reduced = tensor.detach().clone()
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced / self.world_size

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def broadcast_float(self, value: float) -> float:
        """Rank 0's ``value`` on every process."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Start every process from rank 0's weights."""
        if not self.is_distributed:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Replace each .grad by its mean over processes (one all-reduce for all of them).

        A parameter without a gradient on every process keeps None (so the optimizer
        skips it, as it would in one process); one with a gradient somewhere gets a
        zero gradient where it had none.
        """
        if not self.is_distributed:
            return
        parameters = list(parameters)
        has_gradient = torch.tensor([float(p.grad is not None) for p in parameters],
                                    device=self.device)
        dist.all_reduce(has_gradient, op=dist.ReduceOp.MAX)
        used = [p for p, flag in zip(parameters, has_gradient.tolist()) if flag > 0]
        if not used:
            return
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in used])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for parameter in used:
            size = parameter.numel()
            parameter.grad = flat[offset:offset + size].view_as(parameter).clone()
            offset += size

    def gather_rng_states(self) -> list[torch.Tensor]:
        """The CPU torch RNG state of every process, in rank order."""
        state = torch.get_rng_state()
        if not self.is_distributed:
            return [state]
        states = [torch.empty_like(state) for _ in range(self.world_size)]
        if dist.get_backend() == "nccl":  # nccl moves CUDA tensors only
            gathered = [s.to(self.device) for s in states]
            dist.all_gather(gathered, state.to(self.device))
            return [s.cpu() for s in gathered]
        dist.all_gather(states, state)
        return states

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()


def setup(device: str = "cpu") -> Context:
    """The Context of this process; joins the process group when torchrun started several.

    ``device``: "cpu" or "cuda" / "cuda:K". Under torchrun, each process takes the
    GPU of its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device=torch.device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(torch_device)
        backend = "nccl"
    else:
        torch_device = torch.device("cpu")
        backend = "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend)
    logger.info("process %d of %d on %s (%s)", rank, world_size, torch_device, backend)
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device,
                   owns_process_group=owns)


def teardown(context: Context) -> None:
    """Leave the process group if ``setup`` joined it."""
    if context.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()
