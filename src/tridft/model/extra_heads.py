"""Heads for new properties, learned on a trained model's latent (see ``tridft finetune``).

All follow the Head interface of ``tridft.model.heads`` (``name``, ``level``,
``spec()``, ``forward(latent, batch)``) and are equivariant by construction:

    kind               output (S structures, N atoms)   built from
    structure_scalar   (S,)        sum or mean over atoms of MLP(latent scalars)
    atom_scalar        (N,)        MLP(latent scalars) per atom
    structure_vector   (S, 3)      sum over atoms of gated-equivariant vectors
    structure_tensor   (S, 3, 3)   symmetric, a sum of per-atom tensors (the polarizability head)
    dipole             (S, 3)      e*Angstrom: sum_i q_i (r_i - centroid) + sum_i p_i

Output scales and shifts are buffers (saved in the state dict, not in ``spec()``),
set from the training labels when a head is attached. Importing this module
registers the kinds in ``HEAD_TYPES`` so that ``build_head`` rebuilds them when a
saved model is loaded (``tridft.model`` imports it).
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from tridft.data.batch import Batch
from tridft.errors import InputError
from tridft.model.bottleneck import Latent
from tridft.model.charge_equilibration import equilibrated_charges
from tridft.model.heads import HEAD_TYPES, GatedEquivariantBlock, Head, PolarizabilityHead, mlp
from tridft.model.scatter import scatter_sum

# Per-structure total charge (e) in Batch.extra; structures without it are neutral.
TOTAL_CHARGE = "total_charge"


class AtomVectorReadout(nn.Module):
    """Latent -> one equivariant vector per atom (N, 3), by two gated-equivariant blocks."""

    def __init__(self, latent_scalars: int, latent_vectors: int, hidden: int):
        super().__init__()
        self.block1 = GatedEquivariantBlock(latent_scalars, latent_vectors, hidden, hidden, hidden)
        self.block2 = GatedEquivariantBlock(hidden, hidden, 1, 1, hidden, activate_scalars=False)

    def forward(self, latent: Latent) -> torch.Tensor:
        scalars, vectors = self.block1(latent.scalars, latent.vectors)
        _, vectors = self.block2(scalars, vectors)
        return vectors.squeeze(-1)


class _ScaledHead(Head):
    """A head whose raw output is multiplied by ``scale`` and offset by ``shift`` (buffers)."""

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0, shift: float = 0.0, **options):
        super().__init__(name, latent_scalars=latent_scalars, latent_vectors=latent_vectors,
                         hidden=hidden, **options)
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))


class AtomScalarHead(_ScaledHead):
    """A per-atom scalar (N,): scale * MLP(z_i) + shift. Invariant."""

    kind = "atom_scalar"
    level = "atom"

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0, shift: float = 0.0):
        super().__init__(name, latent_scalars, latent_vectors, hidden, scale, shift)
        self.mlp = mlp(latent_scalars, hidden, 1)

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        return self.mlp(latent.scalars).squeeze(-1) * self.scale + self.shift


class StructureScalarHead(_ScaledHead):
    """A per-structure scalar (S,): the sum (extensive) or mean (intensive) of per-atom terms.

    Per atom: scale * MLP(z_i) + shift, so for an extensive property ``shift`` is a
    per-atom value and for an intensive one it is the property's mean.
    """

    kind = "structure_scalar"

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 extensive: bool = True, scale: float = 1.0, shift: float = 0.0):
        super().__init__(name, latent_scalars, latent_vectors, hidden, scale, shift,
                         extensive=bool(extensive))
        self.extensive = bool(extensive)
        self.mlp = mlp(latent_scalars, hidden, 1)

    def atomic_contributions(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N,) per-atom terms; their sum (extensive) or mean (intensive) is the output."""
        return self.mlp(latent.scalars).squeeze(-1) * self.scale + self.shift

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        total = scatter_sum(self.atomic_contributions(latent, batch), batch.structure_index,
                            batch.n_structures)
        if self.extensive:
            return total
        return total / batch.n_atoms.to(total.dtype)


class StructureVectorHead(_ScaledHead):
    """A per-structure vector (S, 3): scale * sum over atoms of equivariant vectors.

    Uses no positions, so it is translation invariant and defined in periodic cells.
    """

    kind = "structure_vector"

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0):
        super().__init__(name, latent_scalars, latent_vectors, hidden, scale)
        self.readout = AtomVectorReadout(latent_scalars, latent_vectors, hidden)

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        return scatter_sum(self.readout(latent), batch.structure_index,
                           batch.n_structures) * self.scale


class StructureTensorHead(PolarizabilityHead):
    """A symmetric 3x3 tensor per structure (S, 3, 3) that rotates as R T R^T.

    The polarizability head's construction (isotropic + symmetric traceless per
    atom, from latent vectors, never from positions) for any such property.
    """

    kind = "structure_tensor"


class DipoleHead(_ScaledHead):
    """Molecular dipole (S, 3) e*Angstrom from charges and atomic dipoles.

        q_i = scale * (c_i - mean_{j in s} c_j) + Q_s / n_s        (e; sum_i q_i = Q_s)
        p_i = scale * v_i                                          (e*Angstrom)
        mu_s = sum_i q_i (r_i - centroid_s) + sum_i p_i

    c_i = MLP(latent scalars) and v_i a gated-equivariant latent vector. The
    charges sum to the structure's total charge Q_s (Batch.extra["total_charge"],
    0 when absent), so for a neutral molecule mu does not depend on the origin and
    is exactly translation invariant. Periodic structures are refused: with
    positions inside a cell the dipole is not well defined.

    charges="equilibrated": instead of local charges, the MLP gives each atom an
    electronegativity chi_i = scale * c_i and a hardness J_i = softplus(h_i), and the
    charges minimise a Gaussian-charge electrostatic energy of the whole molecule
    (tridft.model.charge_equilibration), so they respond to atoms beyond the cutoff.
    """

    kind = "dipole"
    periodic = False
    CHARGE_MODELS = ("local", "equilibrated")

    def __init__(self, name: str, latent_scalars: int, latent_vectors: int, hidden: int,
                 scale: float = 1.0, charges: str = "local"):
        if charges not in self.CHARGE_MODELS:
            raise ValueError(f"charges must be one of {', '.join(self.CHARGE_MODELS)}, "
                             f"not '{charges}'")
        super().__init__(name, latent_scalars, latent_vectors, hidden, scale)
        if charges != "local":  # absent from the spec of local-charge heads
            self.options["charges"] = charges
        self.charges = charges
        self.charge_mlp = mlp(latent_scalars, hidden, 1 if charges == "local" else 2)
        if charges == "equilibrated":
            # (119,) Angstrom: the Gaussian charge widths, the covalent radius of each element.
            self.register_buffer("charge_widths", torch.as_tensor(covalent_radii,
                                                                  dtype=torch.float32))
        self.atomic_dipole_readout = AtomVectorReadout(latent_scalars, latent_vectors, hidden)

    def atomic_charges(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N,) e, summing to each structure's total charge."""
        if self.charges == "equilibrated":
            return self._equilibrated_charges(latent, batch)
        raw = self.charge_mlp(latent.scalars).squeeze(-1) * self.scale  # (N,)
        counts = batch.n_atoms.to(raw.dtype)  # (S,)
        excess = scatter_sum(raw, batch.structure_index, batch.n_structures) \
            - total_charge(batch, raw.dtype)  # (S,) e
        return raw - (excess / counts)[batch.structure_index]

    def _equilibrated_charges(self, latent: Latent, batch: Batch) -> torch.Tensor:
        chi, h = self.charge_mlp(latent.scalars).unbind(-1)  # (N,) each
        widths = self.charge_widths.to(chi.dtype)[batch.numbers]  # (N,) Angstrom
        return equilibrated_charges(chi * self.scale, nn.functional.softplus(h), widths,
                                    batch.positions, batch.structure_index,
                                    total_charge(batch, chi.dtype))

    def atomic_dipoles(self, latent: Latent, batch: Batch) -> torch.Tensor:
        """(N, 3) e*Angstrom, the position-free part of the dipole."""
        return self.atomic_dipole_readout(latent) * self.scale

    def forward(self, latent: Latent, batch: Batch) -> torch.Tensor:
        refuse_periodic(batch, self.name)
        charges = self.atomic_charges(latent, batch)
        centroids = scatter_sum(batch.positions, batch.structure_index, batch.n_structures) \
            / batch.n_atoms.to(batch.positions.dtype).unsqueeze(-1)  # (S, 3) Angstrom
        relative = batch.positions - centroids[batch.structure_index]  # (N, 3) Angstrom
        per_atom = charges.unsqueeze(-1) * relative + self.atomic_dipoles(latent, batch)
        return scatter_sum(per_atom, batch.structure_index, batch.n_structures)


def total_charge(batch: Batch, dtype: torch.dtype) -> torch.Tensor:
    """(S,) e: Batch.extra["total_charge"] where given, else 0 (neutral)."""
    if TOTAL_CHARGE not in batch.extra:
        return torch.zeros(batch.n_structures, dtype=dtype, device=batch.positions.device)
    values, mask = batch.extra[TOTAL_CHARGE]
    return torch.where(mask, values.reshape(-1).to(dtype), torch.zeros((), dtype=dtype))


def refuse_periodic(batch: Batch, head_name: str) -> None:
    """InputError naming the first periodic structure of the batch, if any."""
    periodic = batch.pbc.any(dim=-1)
    if bool(periodic.any()):
        first = int(periodic.nonzero()[0, 0])
        raise InputError(f"head '{head_name}' predicts molecular dipoles from positions, which "
                         f"are ill-defined for periodic cells", index=first, field="pbc")


EXTRA_HEADS: tuple[type[Head], ...] = (StructureScalarHead, AtomScalarHead, StructureVectorHead,
                                       StructureTensorHead, DipoleHead)
for _head in EXTRA_HEADS:
    HEAD_TYPES.setdefault(_head.kind, _head)
