"""Heads: each reads only the latent (and the batch's bookkeeping) and predicts one property.

Every head has ``name`` (its output key), ``level`` ("structure" or "atom"),
and ``spec()``: the plain dict that rebuilds it (see ``build_head``). New heads
register in ``HEAD_TYPES`` and plug into a trained model's latent unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.backbone import direction_tensors
from tridft.model.bottleneck import Latent
from tridft.model.scatter import scatter_sum


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, outputs))


class GatedEquivariantBlock(nn.Module):
    """(scalars (N, Si), vectors (N, 3, Vi)) -> (scalars (N, So), vectors (N, 3, Vo)).

    Vectors are only mixed linearly and rescaled by invariant gates, so they stay
    equivariant; scalars see the vectors through their norms (Schuett et al. 2021).
    """

    def __init__(self, scalars_in: int, vectors_in: int, scalars_out: int, vectors_out: int,
                 hidden: int, activate_scalars: bool = True):
        super().__init__()
        self.vectors_out = vectors_out
        self.mix_norm = nn.Linear(vectors_in, vectors_in, bias=False)
        self.mix_out = nn.Linear(vectors_in, vectors_out, bias=False)
        self.mlp = mlp(scalars_in + vectors_in, hidden, scalars_out + vectors_out)
        self.activation = nn.SiLU() if activate_scalars else nn.Identity()

    def forward(self, scalars: torch.Tensor, vectors: torch.Tensor):
        norms = torch.sqrt((self.mix_norm(vectors) ** 2).sum(dim=1) + 1e-8)
        out = self.mlp(torch.cat([scalars, norms], dim=-1))
        scalars_out, gates = torch.split(out, [out.shape[-1] - self.vectors_out,
                                                self.vectors_out], dim=-1)
        return self.activation(scalars_out), self.mix_out(vectors) * gates.unsqueeze(1)


class Head(nn.Module):
    """The head interface: ``forward(latent, batch) -> Tensor`` and ``spec()``."""

    kind: str = ""
    level: str = "structure"
    # False for heads whose property is undefined in a periodic cell (a dipole from
    # positions): the model leaves them out of batches holding periodic structures.
    periodic: bool = True

    def __init__(self, name: str, **options: Any):
        super().__init__()
        self.name = name
        self.options = options

    def spec(self) -> dict:
        return {"kind": self.kind, "name": self.name, **self.options}


class EnergyHead(Head):
    """Total energy (S,) eV: sum over atoms of scale * MLP(z_i) + shift + reference[Z_i].

    Size-extensive by construction: a sum of per-atom terms of local environments.

    The learned part (scale * MLP, a few eV at most) is computed in the network's
    dtype; the references, the shift and the per-structure sum are float64 whatever
    the network's dtype. A total energy of -4209 eV held in float32 moves in steps
    of 0.5 meV, which would swamp finite differences, NVE drift and barriers.
    """

    kind = "energy"
    # Buffers kept in float64 when the module is cast (model.to(torch.float32)).
    FLOAT64_BUFFERS = ("shift", "reference_energies")

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0, shift: float = 0.0,
                 reference_energies: list[float] | None = None,
                 reference_support: dict | None = None):
        # reference_support: plain data, the compositions whose energy the references
        # determine (tridft.data.references); kept in spec() so that it is saved.
        support = {"reference_support": reference_support} if reference_support else {}
        super().__init__(name, latent_scalars=latent_scalars, latent_vectors=latent_vectors,
                         hidden=hidden, **support)
        self.mlp = mlp(latent_scalars, hidden, 1)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift), dtype=torch.float64))
        references = torch.zeros(119, dtype=torch.float64) if reference_energies is None \
            else torch.as_tensor(reference_energies, dtype=torch.float64)
        self.register_buffer("reference_energies", references)  # (119,) eV per element

    def _apply(self, fn, recurse=True):
        kept = {name: getattr(self, name) for name in self.FLOAT64_BUFFERS}
        super()._apply(fn, recurse)
        for name, value in kept.items():  # follow device moves, never the dtype cast
            setattr(self, name, value.to(device=getattr(self, name).device))
        return self

    def atomic_energies(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N,) eV per atom, float64; their sum per structure is the energy."""
        learned = self.mlp(latent.scalars).squeeze(-1) * self.scale  # (N,) eV, network dtype
        return learned.to(torch.float64) + self.shift + self.reference_energies[batch.numbers]

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(S,) eV, float64."""
        return scatter_sum(self.atomic_energies(latent, batch), batch.structure_index,
                           batch.n_structures)


class DirectForceHead(Head):
    """Forces (N, 3) eV/Angstrom predicted directly from the latent vectors (no backward pass)."""

    kind = "direct_forces"
    level = "atom"

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0):
        super().__init__(name, latent_scalars=latent_scalars, latent_vectors=latent_vectors,
                         hidden=hidden)
        self.block1 = GatedEquivariantBlock(latent_scalars, latent_vectors, hidden, hidden, hidden)
        self.block2 = GatedEquivariantBlock(hidden, hidden, 1, 1, hidden, activate_scalars=False)
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        scalars, vectors = self.block1(latent.scalars, latent.vectors)
        _, vectors = self.block2(scalars, vectors)
        return vectors.squeeze(-1) * self.scale


class PolarizabilityHead(Head):
    """Polarizability (S, 3, 3) Angstrom^3, symmetric, a sum of per-atom tensors.

    Per atom: (shift + scale * a_i) I  +  scale * traceless sym(sum_c k_ic u_ic (x) w_ic)
              + scale * sum_j c_ij (r^_ij (x) r^_ij - I / 3)          (when edge_basis > 0)
              + scale * sum_c m_ic t_ic                     (when tensor_channels > 0)
    with a_i, k_ic invariant scalars and u_ic, w_ic equivariant vectors from the latent,
    and c_ij = (W z_i) . (Bessel(r_ij) * envelope(r_ij)) a smooth invariant per neighbour,
    m_ic = (M z_i)_c weights of the latent's symmetric traceless tensors t_ic.
    Built from latent vectors and interatomic vectors, never from absolute positions, so it
    is translation invariant and well defined in periodic cells.

    Why the edge term: the product of two latent vectors starts tiny (the vector channels
    are born small and pass two gates), so the anisotropic part begins ~1e-9 A^3 against
    labels of ~0.1 A^3 and learning waits on a plateau. The edge term is linear in the
    latent scalars and anisotropic from the first step (bond polarizability models are
    built the same way).
    """

    kind = "polarizability"

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 channels: int = 8, scale: float = 1.0, shift: float = 0.0,
                 edge_basis: int = 0, cutoff: float = 5.0, tensor_channels: int = 0):
        options = {"edge_basis": edge_basis, "cutoff": cutoff} if edge_basis else {}
        if tensor_channels:  # absent from the spec of models without them
            options["tensor_channels"] = tensor_channels
        super().__init__(name, latent_scalars=latent_scalars, latent_vectors=latent_vectors,
                         hidden=hidden, channels=channels, **options)
        self.block = GatedEquivariantBlock(latent_scalars, latent_vectors, hidden, 2 * channels,
                                           hidden)
        self.scalar_out = nn.Linear(hidden, 1 + channels)
        self.channels = channels
        self.edge_basis = edge_basis
        if edge_basis:
            from tridft.model.radial import BesselBasis, PolynomialEnvelope

            self.edge_radial = BesselBasis(cutoff, edge_basis)
            self.edge_envelope = PolynomialEnvelope(cutoff)
            self.edge_weights = nn.Linear(latent_scalars, edge_basis)
        self.tensor_channels = tensor_channels
        if tensor_channels:
            self.tensor_weights = nn.Linear(latent_scalars, tensor_channels)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def atomic_polarizabilities(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N, 3, 3) Angstrom^3 per atom; their sum per structure is the polarizability."""
        scalars, vectors = self.block(latent.scalars, latent.vectors)
        coefficients = self.scalar_out(scalars)
        isotropic, weights = coefficients[:, 0], coefficients[:, 1:]
        u, w = vectors[..., :self.channels], vectors[..., self.channels:]  # (N, 3, C) each
        outer = torch.einsum("nac,nbc,nc->nab", u, w, weights)
        symmetric = 0.5 * (outer + outer.transpose(1, 2))
        eye = torch.eye(3, dtype=symmetric.dtype, device=symmetric.device)
        trace = symmetric.diagonal(dim1=1, dim2=2).sum(-1)
        traceless = symmetric - trace[:, None, None] / 3 * eye
        if self.edge_basis:
            traceless = traceless + self._edge_tensors(latent, batch)
        if self.tensor_channels:  # (N, 3, 3, Lt) latent tensors, weighted per channel
            traceless = traceless + torch.einsum("nabc,nc->nab", latent.tensors,
                                                 self.tensor_weights(latent.scalars))
        return ((self.shift + self.scale * isotropic)[:, None, None] * eye
                + self.scale * traceless)

    def _edge_tensors(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N, 3, 3) sum over neighbours j of c_ij (r^_ij r^_ij - I/3), traceless."""
        centers = batch.edge_index[0]
        vectors = batch.edge_vectors()  # (E, 3) Angstrom
        distances = torch.linalg.norm(vectors, dim=-1)  # (E,)
        units = vectors / distances.unsqueeze(-1)
        radial = self.edge_radial(distances) * self.edge_envelope(distances).unsqueeze(-1)
        per_edge = (self.edge_weights(latent.scalars).index_select(0, centers)
                    * radial).sum(-1)  # (E,)
        tensors = per_edge[:, None, None] * direction_tensors(units)
        return scatter_sum(tensors, centers, latent.scalars.shape[0])

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        return scatter_sum(self.atomic_polarizabilities(latent, batch), batch.structure_index,
                           batch.n_structures)


HEAD_TYPES: dict[str, type[Head]] = {
    EnergyHead.kind: EnergyHead,
    DirectForceHead.kind: DirectForceHead,
    PolarizabilityHead.kind: PolarizabilityHead,
}


def build_head(spec: dict) -> Head:
    """Rebuild a head from ``Head.spec()`` (statistics buffers come from the state dict)."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind not in HEAD_TYPES:
        raise ValueError(f"unknown head kind '{kind}' (known: {', '.join(sorted(HEAD_TYPES))})")
    return HEAD_TYPES[kind](**spec)
