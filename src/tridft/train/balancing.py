"""Loss balancing: how the per-task losses become one update of the shared model.

One interface, one strategy object per method:

    balancer.backward(losses, step) -> total loss (detached); sets every .grad
    balancer.weights()              -> {task: current weight}, for the log
    balancer.optimizer_parameters() -> parameters the main optimizer trains (if any)

- ``Fixed``: total = sum_t w_t L_t with the configured weights.
- ``UncertaintyWeighting`` (Kendall, Gal & Cipolla 2018): learned log-variances
  s_t, total = sum_t exp(-s_t) L_t + s_t; the s_t are trained by the main optimizer.
- ``GradNorm`` (Chen et al. 2018): weights w_t moved, by their own small Adam, so
  that the gradient norms ||grad_W w_t L_t|| on the last shared layer W approach
  mean_t(...) * r_t^alpha, where r_t is the task's relative inverse training rate;
  then renormalised to sum to the number of tasks.

Any of them can add PCGrad (Yu et al. 2020): on the shared parameters (backbone
and bottleneck) each task's gradient loses its component along any other task's
gradient it conflicts with (negative dot product) before they are summed. The
heads keep their own gradients. Only tasks with labels in the batch take part.

``gradient_cosines`` measures the interference that PCGrad acts on.

For data-parallel training, ``average`` turns a tensor of this process into the
mean over processes (an all-reduce); the identity otherwise. Everything that is
nonlinear in the gradients (norms, projections, cosines) is computed on averaged
gradients, so that every process takes the same decision as one process would.
"""

from __future__ import annotations

import abc
import itertools
from typing import Callable

import torch
from torch import nn

from tridft.train.losses import Losses

Average = Callable[[torch.Tensor], torch.Tensor]


def _identity(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def shared_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters every head depends on: backbone and bottleneck."""
    return [p for module in (model.backbone, model.bottleneck) for p in module.parameters()
            if p.requires_grad]


def last_shared_parameters(model: nn.Module) -> list[nn.Parameter]:
    """GradNorm's W: the bottleneck, or the last backbone update without a bottleneck."""
    parameters = [p for p in model.bottleneck.parameters() if p.requires_grad]
    if not parameters:
        parameters = [p for p in model.backbone.updates[-1].parameters() if p.requires_grad]
    return parameters


def flat_gradient(loss: torch.Tensor, parameters: list[torch.Tensor]) -> torch.Tensor:
    """(P,) d loss / d parameters, concatenated; zeros where a parameter is unused."""
    gradients = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(gradients, parameters)])


def gradient_cosines(task_losses: dict[str, torch.Tensor], shared_params: list[torch.Tensor],
                     average: Average = _identity) -> dict[str, float]:
    """{"a|b": cos(grad L_a, grad L_b)} on the shared parameters, for every pair of tasks.

    +1: the tasks pull the shared model the same way; -1: they fight. A pair with
    a zero gradient (e.g. a task without labels) is left out.
    """
    gradients = {task: average(flat_gradient(loss, shared_params))
                 for task, loss in task_losses.items()}
    cosines = {}
    for a, b in itertools.combinations(gradients, 2):
        norms = gradients[a].norm() * gradients[b].norm()
        if norms > 0:
            cosines[f"{a}|{b}"] = float(torch.dot(gradients[a], gradients[b]) / norms)
    return cosines


def project_conflicting(gradients: list[torch.Tensor],
                        orders: list[list[int]] | None = None) -> list[torch.Tensor]:
    """PCGrad: each g_i minus its projection on every g_j (j != i) it conflicts with.

    ``orders[i]`` is the order in which task i visits the others (Yu et al. draw it
    at random; default: 0, 1, 2, ...). Projections use the original g_j.

    >>> g = project_conflicting([torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])])
    >>> g[0].tolist(), g[1].tolist()
    ([0.5, 0.5], [0.0, 1.0])
    """
    projected = []
    for i, gradient in enumerate(gradients):
        g = gradient.clone()
        others = orders[i] if orders is not None else [j for j in range(len(gradients)) if j != i]
        for j in others:
            dot = torch.dot(g, gradients[j])
            norm_squared = torch.dot(gradients[j], gradients[j])
            if dot < 0 and norm_squared > 0:
                g = g - dot / norm_squared * gradients[j]
        projected.append(g)
    return projected


class Balancer(nn.Module, abc.ABC):
    """Base strategy: turns the losses into gradients (see the module docstring)."""

    def __init__(self, tasks: list[str], shared_params: list[nn.Parameter],
                 pcgrad: bool = False, average: Average | None = None, seed: int = 0):
        super().__init__()
        self.tasks = list(tasks)
        # Plain attributes (not registered): these belong to the model, not to the balancer.
        self.shared_params = list(shared_params)
        self.pcgrad = pcgrad
        self.average = average or _identity
        self.seed = seed

    @abc.abstractmethod
    def weighted(self, task_losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each present task's contribution to the total loss."""

    @abc.abstractmethod
    def weights(self) -> dict[str, float]:
        """The current weight of every task."""

    def update(self, task_losses: dict[str, torch.Tensor]) -> None:
        """Adapt the weights before the backward pass (GradNorm); nothing by default."""

    def optimizer_parameters(self) -> list[nn.Parameter]:
        """Parameters the main optimizer must train (the uncertainty log-variances)."""
        return []

    def backward(self, losses: Losses, step: int = 0) -> torch.Tensor:
        """Set the gradients of the model (and balancer) parameters; return the total loss."""
        task_losses = losses.present_tasks()
        self.update(task_losses)
        weighted = self.weighted(task_losses)
        total = sum(weighted.values(), torch.zeros(())) + losses.regularization()
        if not total.requires_grad:
            return total.detach()
        if self.pcgrad and len(weighted) > 1:
            self._pcgrad_backward(weighted, total, step)
        else:
            total.backward()
        return total.detach()

    def _pcgrad_backward(self, weighted: dict[str, torch.Tensor], total: torch.Tensor,
                         step: int) -> None:
        # Shared part of each task's (weighted) gradient, averaged over processes.
        task_gradients = [self.average(flat_gradient(loss, self.shared_params))
                          for loss in weighted.values()]
        total.backward()  # every parameter gets the plain sum (heads keep it)
        # Order in which each task visits the others: random as in Yu et al., but a
        # function of (seed, step) so that resumed and parallel runs draw the same.
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        n = len(task_gradients)
        orders = [[j for j in torch.randperm(n, generator=generator).tolist() if j != i]
                  for i in range(n)]
        projected = project_conflicting(task_gradients, orders)
        # Shared gradient := what it was (regularizers included) - sum g_t + sum PCGrad(g_t).
        correction = sum(projected) - sum(task_gradients)
        offset = 0
        for parameter in self.shared_params:
            size = parameter.numel()
            piece = correction[offset:offset + size].view_as(parameter)
            parameter.grad = piece.clone() if parameter.grad is None else parameter.grad + piece
            offset += size


class Fixed(Balancer):
    """total = sum_t w_t L_t with the configured weights."""

    def __init__(self, weights: dict[str, float], shared_params, **options):
        super().__init__(list(weights), shared_params, **options)
        self.fixed = dict(weights)

    def weighted(self, task_losses):
        return {task: self.fixed[task] * loss for task, loss in task_losses.items()}

    def weights(self):
        return dict(self.fixed)


class UncertaintyWeighting(Balancer):
    """total = sum_t exp(-s_t) L_t + s_t with learned log-variances s_t (start 0)."""

    def __init__(self, tasks: list[str], shared_params, **options):
        super().__init__(tasks, shared_params, **options)
        self.log_variances = nn.Parameter(torch.zeros(len(tasks)))  # (T,)

    def weighted(self, task_losses):
        terms = {}
        for task, loss in task_losses.items():
            s = self.log_variances[self.tasks.index(task)]
            terms[task] = torch.exp(-s) * loss + s
        return terms

    def weights(self):
        return {task: float(torch.exp(-s.detach())) for task, s in zip(self.tasks, self.log_variances)}

    def optimizer_parameters(self):
        return [self.log_variances]


class GradNorm(Balancer):
    """Weights that equalise the tasks' gradient norms on the last shared layer.

    Each step, for the tasks present: g_t = ||grad_W L_t||, G_t = w_t g_t,
    r_t = (L_t / L_t(0)) / mean(L / L(0)), target_t = mean(G) r_t^alpha, and
    grad_{w_t} sum |G_t - target_t| = sign(G_t - target_t) g_t (targets constant).
    L_t(0) is the task's loss the first time it is seen.
    """

    def __init__(self, weights: dict[str, float], shared_params,
                 last_shared_params: list[nn.Parameter], alpha: float = 1.5,
                 lr: float = 0.01, **options):
        super().__init__(list(weights), shared_params, **options)
        self.last_shared_params = list(last_shared_params)
        self.alpha = alpha
        initial = torch.tensor([weights[task] for task in self.tasks], dtype=torch.float64)
        self.task_weights = nn.Parameter(initial * len(initial) / initial.sum(),
                                         requires_grad=False)  # (T,), sums to T
        self.register_buffer("initial_losses", torch.full((len(self.tasks),), float("nan"),
                                                          dtype=torch.float64))
        self.optimizer = torch.optim.Adam([self.task_weights], lr=lr)

    def weighted(self, task_losses):
        return {task: float(self.task_weights[self.tasks.index(task)]) * loss
                for task, loss in task_losses.items()}

    def weights(self):
        return {task: float(w) for task, w in zip(self.tasks, self.task_weights)}

    def update(self, task_losses):
        if len(task_losses) < 2:
            return  # one task: nothing to balance
        device = self.task_weights.device
        index = torch.tensor([self.tasks.index(task) for task in task_losses], device=device)
        norms = torch.stack([self.average(flat_gradient(loss, self.last_shared_params)).norm()
                             for loss in task_losses.values()]).to(device, torch.float64)  # g_t
        losses = torch.stack([self.average(loss.detach()) for loss in task_losses.values()])
        losses = losses.to(device, torch.float64)
        first_time = torch.isnan(self.initial_losses[index])
        self.initial_losses[index[first_time]] = losses[first_time]
        inverse_rate = losses / self.initial_losses[index].clamp(min=1e-12)
        relative = inverse_rate / inverse_rate.mean()
        weighted_norms = self.task_weights.detach()[index] * norms  # G_t
        targets = weighted_norms.mean() * relative**self.alpha
        gradient = torch.zeros_like(self.task_weights)
        gradient[index] = torch.sign(weighted_norms - targets) * norms
        self.task_weights.grad = gradient
        self.optimizer.step()
        with torch.no_grad():
            self.task_weights.clamp_(min=1e-3)
            self.task_weights.mul_(len(self.tasks) / self.task_weights.sum())

    def get_extra_state(self):
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state):
        self.optimizer.load_state_dict(state["optimizer"])


def build_balancer(loss_config, tasks: list[str], model: nn.Module,
                   average: Average | None = None, seed: int = 0) -> Balancer:
    """The Balancer that ``loss_config.balancing`` names, for ``tasks`` of ``model``."""
    weights = {task: loss_config.weights[task] for task in tasks}
    options = dict(pcgrad=loss_config.pcgrad, average=average, seed=seed)
    shared = shared_parameters(model)
    if loss_config.balancing == "fixed":
        return Fixed(weights, shared, **options)
    if loss_config.balancing == "uncertainty":
        return UncertaintyWeighting(tasks, shared, **options)
    if loss_config.balancing == "gradnorm":
        return GradNorm(weights, shared, last_shared_parameters(model),
                        alpha=loss_config.gradnorm_alpha, lr=loss_config.gradnorm_lr, **options)
    raise ValueError(f"unknown balancing '{loss_config.balancing}'")

