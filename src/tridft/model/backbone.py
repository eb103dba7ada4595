"""The shared equivariant backbone: PaiNN-style message passing (Schuett et al. 2021).

Every atom carries invariant scalars s (N, F) and equivariant vectors v (N, 3, F).
Messages depend on distances through a smooth radial basis and on directions
only through unit vectors, so the scalars are invariant and the vectors rotate
with the structure (and flip sign under inversion, like positions do).

Optionally (``tensor_channels`` C > 0) atoms also carry symmetric traceless rank-2
tensors t (N, 3, 3, C), built from neighbours' r r^T - I/3 (the l = 2 part of the
direction, which unit vectors alone reach only through products of sums). The
update then reads tr(t t'), v^T t v and t v, as TensorNet-style Cartesian models do:
angular resolution beyond PaiNN's cosines, without spherical harmonics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.radial import BesselBasis, PolynomialEnvelope
from tridft.model.scatter import scatter_sum


def direction_tensors(unit_vectors: torch.Tensor) -> torch.Tensor:
    """(E, 3, 3) r r^T - I/3 of unit vectors (E, 3): symmetric, traceless, the l = 2
    part of a direction."""
    eye = torch.eye(3, dtype=unit_vectors.dtype, device=unit_vectors.device)
    return unit_vectors.unsqueeze(-1) * unit_vectors.unsqueeze(-2) - eye / 3


@dataclass
class AtomFeatures:
    """scalars (N, F) invariant; vectors (N, 3, F) equivariant; tensors (N, 3, 3, C)
    symmetric traceless, or None without rank-2 channels."""

    scalars: torch.Tensor
    vectors: torch.Tensor
    tensors: torch.Tensor | None = None


class MessageBlock(nn.Module):
    """Gathers from neighbours: filters from distances, directions for new vectors."""

    def __init__(self, features: int, radial_basis: int, tensor_channels: int = 0):
        super().__init__()
        self.features = features
        self.tensor_channels = tensor_channels
        # 3F gates for scalars and vectors, 2C for tensors (from directions, from neighbours).
        width = 3 * features + 2 * tensor_channels
        self.scalar_mlp = nn.Sequential(nn.Linear(features, features), nn.SiLU(),
                                        nn.Linear(features, width))
        self.filter = nn.Linear(radial_basis, width)

    def forward(self, x: AtomFeatures, edge_index: torch.Tensor, enveloped: torch.Tensor,
                unit_vectors: torch.Tensor, neighbor_norm: float,
                first: bool = False,
                direction_tensors: torch.Tensor | None = None) -> AtomFeatures:
        centers, neighbors = edge_index
        # (E, 3F): the filter times the envelope, (W r + b) u = [r u, u] @ [W, b]^T, one
        # matrix product on the (E, K + 1) ``enveloped`` basis instead of a product and an
        # extra pass over an (E, 3F) tensor (and its backward) in every layer.
        # Dividing the sums over neighbours by the mean neighbour count (or its square root)
        # keeps activations O(1) for any density; the division is folded into this small
        # (3F, K + 1) matrix rather than applied to every summed (N, ...) message.
        filter_weights = torch.cat([self.filter.weight, self.filter.bias.unsqueeze(-1)],
                                   dim=1) / neighbor_norm
        # (E, 3F): per-edge weights, smoothly zero at the cutoff. Gathers use index_select,
        # not tensor[index]: on CPU it is several times faster, and its backward is an
        # index_add rather than an accumulating index_put.
        weights = self.scalar_mlp(x.scalars).index_select(0, neighbors) \
            * nn.functional.linear(enveloped, filter_weights)
        F, C = self.features, self.tensor_channels
        gate_vector, gate_scalar, gate_direction, gate_tensor_direction, gate_tensor = \
            torch.split(weights, [F, F, F, C, C], dim=-1)
        # A contiguous copy: index_add_ of a strided (E, F) slice takes a slow path.
        message_scalars = gate_scalar.contiguous()
        message_vectors = unit_vectors.unsqueeze(-1) * gate_direction.unsqueeze(1)
        if not first:  # the first layer's vectors are all zero: nothing to gather
            message_vectors = message_vectors \
                + x.vectors.index_select(0, neighbors) * gate_vector.unsqueeze(1)
        n_atoms = x.scalars.shape[0]
        tensors = x.tensors
        if C:
            # (E, 3, 3, C): r r^T - I/3 per channel, plus the neighbours' tensors.
            message_tensors = direction_tensors.unsqueeze(-1) \
                * gate_tensor_direction[:, None, None, :]
            if not first:
                message_tensors = message_tensors \
                    + x.tensors.index_select(0, neighbors) * gate_tensor[:, None, None, :]
            tensors = x.tensors + scatter_sum(message_tensors, centers, n_atoms)
        return AtomFeatures(
            scalars=x.scalars + scatter_sum(message_scalars, centers, n_atoms),
            vectors=x.vectors + scatter_sum(message_vectors, centers, n_atoms),
            tensors=tensors,
        )


class UpdateBlock(nn.Module):
    """Mixes channels within each atom: scalars see vector norms, vectors are rescaled."""

    def __init__(self, features: int, tensor_channels: int = 0):
        super().__init__()
        self.features = features
        self.tensor_channels = C = tensor_channels
        self.mix_u = nn.Linear(features, features, bias=False)
        self.mix_v = nn.Linear(features, features, bias=False)
        self.mlp = nn.Sequential(nn.Linear(2 * features + 2 * C, features), nn.SiLU(),
                                 nn.Linear(features, 3 * features + 2 * C))
        if C:
            self.mix_t = nn.Linear(C, C, bias=False)  # tensor channels mixed
            self.vectors_to_c = nn.Linear(features, C, bias=False)  # vectors seen by tensors
            self.tv_to_f = nn.Linear(C, features, bias=False)  # t v back to F vectors

    def forward(self, x: AtomFeatures) -> AtomFeatures:
        F, C = self.features, self.tensor_channels
        u = self.mix_u(x.vectors)  # (N, 3, F)
        v = self.mix_v(x.vectors)
        # Smooth norm: sqrt(|v|^2 + eps) keeps the gradient finite at v = 0.
        v_norm = torch.sqrt((v * v).sum(dim=1) + 1e-8)
        invariants = [x.scalars, v_norm]
        if C:
            t = self.mix_t(x.tensors)  # (N, 3, 3, C)
            w = self.vectors_to_c(x.vectors)  # (N, 3, C)
            tw = torch.einsum("nijc,njc->nic", t, w)  # (N, 3, C): t w, a vector
            # tr(t x.t) (pairs of l = 2 directions) and w^T t w (three-direction terms).
            invariants += [(t * x.tensors).sum(dim=(1, 2)), (w * tw).sum(dim=1)]
        a = self.mlp(torch.cat(invariants, dim=-1))
        a_vv, a_sv, a_ss, a_tt, a_tv = torch.split(a, [F, F, F, C, C], dim=-1)
        vectors = x.vectors + a_vv.unsqueeze(1) * u
        tensors = x.tensors
        if C:
            vectors = vectors + self.tv_to_f(tw * a_tv.unsqueeze(1))
            tensors = x.tensors + a_tt[:, None, None, :] * t
        return AtomFeatures(
            scalars=x.scalars + a_ss + a_sv * (u * v).sum(dim=1),
            vectors=vectors,
            tensors=tensors,
        )


class PaiNNBackbone(nn.Module):
    """Batch -> AtomFeatures after ``layers`` rounds of message passing and update."""

    def __init__(self, features: int, layers: int, cutoff: float, radial_basis: int,
                 envelope_exponent: int = 5, average_neighbors: float = 1.0,
                 normalization: str = "sqrt", tensor_channels: int = 0):
        super().__init__()
        self.features = features
        self.tensor_channels = tensor_channels
        self.cutoff = cutoff
        self.embedding = nn.Embedding(119, features)
        self.radial = BesselBasis(cutoff, radial_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_exponent)
        self.messages = nn.ModuleList(MessageBlock(features, radial_basis, tensor_channels)
                                      for _ in range(layers))
        self.updates = nn.ModuleList(UpdateBlock(features, tensor_channels)
                                     for _ in range(layers))
        self.register_buffer("average_neighbors", torch.tensor(float(max(average_neighbors, 1.0))))
        # Sums over neighbours are divided by sqrt(mean count) (NequIP's choice) or by the
        # mean count. On ethanol (8 neighbours) sqrt trained forces ~10% better at equal
        # steps: dividing by 8 starts every layer's messages 8x smaller than the features
        # they update, so the geometry dependence the forces need grows slowly.
        self.normalization = normalization

    def forward(self, batch: Batch) -> AtomFeatures:
        vectors = batch.edge_vectors()  # (E, 3) Angstrom
        distances = torch.linalg.norm(vectors, dim=-1)  # (E,)
        unit_vectors = vectors / distances.unsqueeze(-1)
        envelope = self.envelope(distances).unsqueeze(-1)  # (E, 1)
        # (E, K + 1): the radial basis and a constant, both times the envelope (see
        # MessageBlock: it makes each layer's enveloped filter one matrix product).
        enveloped = torch.cat([self.radial(distances) * envelope, envelope], dim=-1)

        scalars = self.embedding(batch.numbers)
        x = AtomFeatures(scalars=scalars,
                         vectors=scalars.new_zeros(scalars.shape[0], 3, self.features))
        directions = None
        if self.tensor_channels:
            directions = direction_tensors(unit_vectors)  # (E, 3, 3)
            x.tensors = scalars.new_zeros(scalars.shape[0], 3, 3, self.tensor_channels)
        norm = float(self.average_neighbors)
        if self.normalization == "sqrt":
            norm = norm ** 0.5
        for layer, (message, update) in enumerate(zip(self.messages, self.updates)):
            x = message(x, batch.edge_index, enveloped, unit_vectors, norm, first=layer == 0,
                        direction_tensors=directions)
            x = update(x)
        return x
