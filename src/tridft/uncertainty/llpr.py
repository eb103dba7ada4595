"""Last-layer prediction rigidity (LLPR): uncertainties from the heads' last linear layers.

Every head's output y is linear in the parameters theta of its last linear layer
(energy: the energy MLP's output layer; direct forces: the force head's last vector
mix; polarizability: the layer that gives the per-atom isotropic and anisotropic
coefficients, and the per-neighbour weights of its bond term when it has one). With J = dy/dtheta for one structure (or one atom, for the forces)
and the covariance C = sum over the training set of J^T J,

    variance(y) = alpha^2 * J (C + s^2 I)^-1 J^T

(Bigi, Chong, Ceriotti and Grasselli 2024, "A prediction rigidity formalism for
low-cost uncertainties in trained neural networks"). The latent is small, so theta
has 33 to 600 numbers and C is cheap; alpha^2 and s^2 are fitted on the validation
split (tridft.uncertainty.calibrate).

J is found without touching the model code: the heads are run a second time on the
(detached) latent of the model's pass, with a zero "ghost" copy of the layer's
parameters, one per structure (or per atom), added to the layer's output through a
forward hook; the gradient of each output component with respect to the ghosts is
J for every structure at once, from one vectorised backward pass over the components
(1 for the energy, 3 for forces, 9 for the polarizability) through the heads only.

The direct forces have a second estimate in the same model, -dE/dR, which the
Jacobian regulariser pulls towards them; where the two disagree the model is unsure.
Their squared difference d^2 is added to the LLPR variance with a weight fitted on
validation (``HeadCalibration``); it costs one backward pass through the model.

Outputs (predicted standard deviations, calibrated), per head name ``h``:
    h_uncertainty            (S,) for structure heads, (N,) per atom for atom heads,
                             the RMS over the output's components, in the output's unit
    h_uncertainty_max        (S,) for atom heads: the largest atom value per structure
energy eV, forces eV/Angstrom, polarizability Angstrom^3.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.scatter import scatter_sum

# Head kind -> (paths of the linear layers inside the head whose parameters enter J,
# level of the ghosts). The output is linear in each of them.
LAST_LAYERS: dict[str, tuple[tuple[str, ...], str]] = {
    "energy": (("mlp.2",), "structure"),
    "direct_forces": (("block2.mix_out",), "atom"),
    "polarizability": (("scalar_out", "edge_weights"), "structure"),
}
# Head kind -> the output that predicts the same quantity another way: their
# disagreement joins the variance (a committee of two the model already has).
PARTNERS: dict[str, str] = {"direct_forces": "conservative_forces"}
SUFFIX = "_uncertainty"
FORMAT_VERSION = 1


def uncertainty_key(head: str) -> str:
    return head + SUFFIX


def supported_heads(model) -> dict[str, tuple[tuple[str, ...], str]]:
    """Head name -> (module paths in the model, level) for the heads LLPR can handle."""
    found = {}
    for name, head in model.heads.items():
        if head.kind in LAST_LAYERS:
            paths, level = LAST_LAYERS[head.kind]
            present = [path for path in paths if isinstance(
                getattr(head, path.split(".")[0], None), nn.Module)]  # edge_weights: optional
            found[name] = (tuple(f"heads.{name}.{path}" for path in present), level)
    return found


class _Ghost:
    """Zero parameters (G, O, I) (+ (G, O)) added to a Linear layer's output, row by owner."""

    def __init__(self, layer: nn.Linear, owners: torch.Tensor, groups: int):
        weight = layer.weight
        self.owners = owners
        self.weight = torch.zeros((groups,) + tuple(weight.shape), dtype=weight.dtype,
                                  device=weight.device, requires_grad=True)
        self.bias = None
        if layer.bias is not None:
            self.bias = torch.zeros(groups, weight.shape[0], dtype=weight.dtype,
                                    device=weight.device, requires_grad=True)
        self.calls = 0
        self.handle = layer.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.calls += 1
        x = inputs[0]  # (N, ..., I)
        extra = torch.einsum("n...i,noi->n...o", x, self.weight.index_select(0, self.owners))
        if self.bias is not None:
            bias = self.bias.index_select(0, self.owners)  # (N, O)
            extra = extra + bias.reshape(bias.shape[0], *([1] * (x.dim() - 2)), bias.shape[1])
        return output + extra

    def leaves(self) -> list[torch.Tensor]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class JacobianProbe:
    """Ghosts on the last layers of ``heads`` while the model runs on ``batch``.

    After the forward pass, ``jacobians(outputs)`` gives, per head, J (G, D, P): G
    structures (or atoms), D output components, P last-layer parameters.
    """

    def __init__(self, model, batch: Batch, heads: dict[str, tuple[tuple[str, ...], str]]):
        self.ghosts: dict[str, list[_Ghost]] = {}
        for name, (paths, level) in heads.items():
            if level == "structure":
                owners, groups = batch.structure_index, batch.n_structures
            else:
                groups = batch.numbers.shape[0]
                owners = torch.arange(groups, device=batch.numbers.device)
            self.ghosts[name] = [_Ghost(model.get_submodule(path), owners, groups)
                                 for path in paths]

    def remove(self) -> None:
        for ghosts in self.ghosts.values():
            for ghost in ghosts:
                ghost.handle.remove()

    def jacobians(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        result = {}
        for name, ghosts in self.ghosts.items():
            if any(ghost.calls != 1 for ghost in ghosts):
                raise RuntimeError(f"a last layer of head '{name}' did not run exactly once "
                                   f"in the forward pass, as LLPR needs")
            leaves = [leaf for ghost in ghosts for leaf in ghost.leaves()]
            values = outputs[name]
            result[name] = _jacobian(values.reshape(values.shape[0], -1), leaves)
        return result


def _jacobian(values: torch.Tensor, leaves: list[torch.Tensor]) -> torch.Tensor:
    """(G, D, P) float64: d values[g, d] / d leaves[g] for ghosts owned by group g."""
    groups, components = values.shape
    try:  # all D components in one vectorised backward pass
        seeds = torch.eye(components, dtype=values.dtype, device=values.device)
        seeds = seeds.unsqueeze(1).expand(components, groups, components)
        grads = torch.autograd.grad(values, leaves, grad_outputs=seeds, retain_graph=True,
                                    is_grads_batched=True)
        rows = torch.cat([g.reshape(components, groups, -1) for g in grads], dim=2)
        return rows.transpose(0, 1).detach().to(torch.float64)
    except RuntimeError:  # an operation without a batching rule: one pass per component
        rows = []
        for d in range(components):
            grads = torch.autograd.grad(values[:, d].sum(), leaves, retain_graph=True)
            rows.append(torch.cat([g.reshape(groups, -1) for g in grads], dim=1))
        return torch.stack(rows, dim=1).detach().to(torch.float64)


@contextmanager
def captured_latent(model):
    """``with captured_latent(model) as box: model(batch)``; then box["latent"] is the
    latent of that pass (a forward hook on the bottleneck)."""
    box: dict = {}
    handle = model.bottleneck.register_forward_hook(
        lambda module, inputs, output: box.__setitem__("latent", output))
    try:
        yield box
    finally:
        handle.remove()


def head_jacobians(model, latent, batch: Batch,
                   heads: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, torch.Tensor]:
    """J (G, D, P) of every head in ``heads``, from the heads alone run again on a detached
    ``latent``: the backward passes never enter the backbone (cheap)."""
    detached = replace(latent, scalars=latent.scalars.detach(), vectors=latent.vectors.detach(),
                       mean=latent.mean.detach(),
                       log_var=None if latent.log_var is None else latent.log_var.detach())
    batch = replace(batch, positions=batch.positions.detach(), cell=batch.cell.detach())
    with torch.enable_grad(), probe(model, batch, heads) as jacobian_probe:
        outputs = {name: model.heads[name](detached, batch) for name in heads}
        return jacobian_probe.jacobians(outputs)


@contextmanager
def probe(model, batch: Batch, heads: dict[str, tuple[tuple[str, ...], str]]):
    """``with probe(model, batch, heads) as p: outputs = model(batch); p.jacobians(outputs)``."""
    jacobian_probe = JacobianProbe(model, batch, heads)
    try:
        yield jacobian_probe
    finally:
        jacobian_probe.remove()


def raw_variances(jacobian: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """(G, D): J_gd (C + s^2 I)^-1 J_gd^T for every group and component, float64."""
    inverse = inverse.to(device=jacobian.device, dtype=torch.float64)
    return torch.einsum("gdp,pq,gdq->gd", jacobian, inverse, jacobian).clamp_min(0.0)


@dataclass
class HeadCalibration:
    """The fitted LLPR of one head.

    modules:      paths of the last linear layers in the model
    level:        "structure" or "atom"
    inverse:      (P, P) float64, (C + s^2 I)^-1
    scale:        alpha^2, dimensionless
    regularizer:  s^2, in units of J^2
    partner:      another output predicting the same quantity (the direct force head's
                  partner is -dE/dR), or None
    disagreement: r, weight of the squared difference d^2 to the partner

    variance = scale * (J (C + s^2 I)^-1 J^T + disagreement * d^2), per component.
    """

    modules: tuple[str, ...]
    level: str
    inverse: torch.Tensor
    scale: float
    regularizer: float
    partner: str | None = None
    disagreement: float = 0.0

    def to_dict(self) -> dict:
        return {"modules": list(self.modules), "level": self.level, "inverse": self.inverse.cpu(),
                "scale": float(self.scale), "regularizer": float(self.regularizer),
                "partner": self.partner, "disagreement": float(self.disagreement)}


class LLPR:
    """Calibrated last-layer uncertainties of a model's heads (``model.uncertainty``)."""

    def __init__(self, heads: dict[str, HeadCalibration], report: dict | None = None):
        self.heads = heads
        self.report = report or {}  # plain data: how the calibration was fitted

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "report": self.report,
                "heads": {name: head.to_dict() for name, head in self.heads.items()}}

    @classmethod
    def from_dict(cls, payload: dict) -> "LLPR":
        heads = {name: HeadCalibration(**{**spec, "modules": tuple(spec["modules"])})
                 for name, spec in payload["heads"].items()}
        return cls(heads, payload.get("report", {}))

    def probed_layers(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """What ``probe`` needs: head name -> (module paths, level)."""
        return {name: (head.modules, head.level) for name, head in self.heads.items()}

    def partners(self) -> set[str]:
        """Outputs the uncertainties need besides the heads' own (conservative_forces)."""
        return {head.partner for head in self.heads.values()
                if head.partner is not None and head.disagreement > 0}

    def uncertainties(self, jacobians: dict[str, torch.Tensor], batch: Batch,
                      outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Predicted standard deviations (see the module docstring) from ``jacobians``
        and, for heads with a partner, the model's ``outputs``."""
        result = {}
        for name, jacobian in jacobians.items():
            head = self.heads[name]
            raw = raw_variances(jacobian, head.inverse).mean(dim=1)  # (G,)
            if head.partner is not None and head.disagreement > 0:
                raw = raw + head.disagreement * squared_disagreement(outputs, name,
                                                                     head.partner)
            variance = head.scale * raw
            result[uncertainty_key(name)] = variance.sqrt()
            if head.level == "atom":
                largest = torch.full((batch.n_structures,), 0.0, dtype=variance.dtype,
                                     device=variance.device)
                largest = largest.scatter_reduce(0, batch.structure_index, variance.sqrt(),
                                                 reduce="amax")
                result[uncertainty_key(name) + "_max"] = largest
        return result


def squared_disagreement(outputs: dict[str, torch.Tensor], name: str,
                         partner: str) -> torch.Tensor:
    """(G,) mean over components of (output - partner)^2, float64."""
    difference = (outputs[name] - outputs[partner]).to(torch.float64)
    return (difference.reshape(difference.shape[0], -1) ** 2).mean(dim=1)


def per_structure_rms(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(S,) the RMS over each structure's atoms of per-atom values (N,)."""
    sums = scatter_sum(values.to(torch.float64) ** 2, batch.structure_index,
                       batch.n_structures)
    return (sums / batch.n_atoms.to(torch.float64)).sqrt()
