"""The property a new head learns: where its labels live, their shape, scale and error.

A target is a head kind plus a property name. Dipoles live in ``Record.dipole`` /
``Batch.dipole``; every other property in ``Record.extra`` / ``Batch.extra`` (per
structure) or ``Record.atom_extra`` / ``Batch.atom_extra`` (per atom) under its name.

    kind               label shape per structure
    structure_scalar   ()
    structure_vector   (3,)
    structure_tensor   (3, 3)     (9 numbers row-major are accepted)
    dipole             (3,)       e*Angstrom
    atom_scalar        (n,)       one number per atom
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from tridft.data.batch import Batch
from tridft.data.record import Record
from tridft.data.stats import polarizability_statistics, rms
from tridft.errors import InputError
from tridft.model.extra_heads import (AtomScalarHead, DipoleHead, StructureScalarHead,
                                      StructureTensorHead, StructureVectorHead)
from tridft.model.config import ModelConfig
from tridft.model.heads import Head

# A spread below this is "no spread": the neutral scale 1 is used instead.
_TINY = 1e-12

KINDS = ("structure_scalar", "structure_vector", "atom_scalar", "structure_tensor", "dipole")
_LABEL_SHAPES = {"structure_scalar": (), "structure_vector": (3,), "structure_tensor": (3, 3),
                 "dipole": (3,)}


@dataclass(frozen=True)
class Target:
    """A property ``name`` predicted by a head of ``kind`` (one of KINDS)."""

    name: str
    kind: str
    extensive: bool = True  # structure_scalar only: sum (True) or mean (False) over atoms

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown head kind '{self.kind}' (known: {', '.join(KINDS)})")

    @property
    def per_atom(self) -> bool:
        return self.kind == "atom_scalar"

    # --- labels in records --------------------------------------------------------------

    def value(self, record: Record) -> np.ndarray | None:
        """This structure's label (raw shape as read), or None."""
        if self.kind == "dipole":
            return record.dipole
        return (record.atom_extra if self.per_atom else record.extra).get(self.name)

    def conform(self, records: Sequence[Record]) -> list[Record]:
        """The records that carry the label, with the label reshaped to the kind's shape.

        InputError naming the structure (its ``source``) when a label has the wrong size
        or is not finite.
        """
        labelled = []
        for record in records:
            value = self.value(record)
            if value is None:
                continue
            array = np.asarray(value, dtype=np.float64)
            shape = (record.n_atoms,) if self.per_atom else _LABEL_SHAPES[self.kind]
            if array.size != int(np.prod(shape)):
                raise InputError(f"expected {int(np.prod(shape))} number(s) for a "
                                 f"{self.kind} label, got {array.size}",
                                 path=record.source or None, field=self.name)
            if not np.all(np.isfinite(array)):
                raise InputError("label is not finite", path=record.source or None,
                                 field=self.name)
            labelled.append(self._with_label(record, array.reshape(shape)))
        return labelled

    def _with_label(self, record: Record, array: np.ndarray) -> Record:
        if self.kind == "dipole":
            return replace(record, dipole=array)
        if self.per_atom:
            return replace(record, atom_extra={**record.atom_extra, self.name: array})
        return replace(record, extra={**record.extra, self.name: array})

    # --- labels in batches --------------------------------------------------------------

    def labels(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(values (S, ...) or (N,), mask (S,) or (N,)); an all-False mask when absent."""
        if self.kind == "dipole":
            return batch.dipole, batch.dipole_mask
        table = batch.atom_extra if self.per_atom else batch.extra
        if self.name in table:
            values, mask = table[self.name]
            if self.kind == "structure_scalar":
                values = values.reshape(-1)
            return values, mask
        rows = batch.positions.shape[0] if self.per_atom else batch.n_structures
        shape = (rows,) + _LABEL_SHAPES.get(self.kind, ())
        return (batch.positions.new_zeros(shape),
                torch.zeros(rows, dtype=torch.bool, device=batch.positions.device))

    # --- the head ----------------------------------------------------------------------

    def build_head(self, records: Sequence[Record], config: ModelConfig, hidden: int | None = None,
                   dipole_scale: float | None = None) -> Head:
        """A new head for this target on a model of ``config``, its output scale and shift
        set from ``records`` (the training structures, already conformed). From ``config``:
        the latent widths, the per-neighbour term of a structure_tensor head (see
        PolarizabilityHead) and the charge model of a dipole head (see DipoleHead);
        ``hidden`` overrides its head width."""
        labels = [np.asarray(self.value(r), dtype=np.float64) for r in records]
        sizes = np.array([r.n_atoms for r in records], dtype=np.float64)
        widths = dict(latent_scalars=config.latent_scalar_width,
                      latent_vectors=config.latent_vector_width,
                      hidden=hidden or config.head_hidden)
        if self.kind == "structure_scalar":
            values = np.array([float(v) for v in labels])
            per_atom = values / sizes if self.extensive else values
            return StructureScalarHead(self.name, extensive=self.extensive,
                                       scale=_spread(per_atom), shift=float(per_atom.mean()),
                                       **widths)
        if self.kind == "atom_scalar":
            values = np.concatenate(labels)
            return AtomScalarHead(self.name, scale=_spread(values), shift=float(values.mean()),
                                  **widths)
        if self.kind == "structure_vector":
            return StructureVectorHead(self.name, scale=rms(np.stack(labels)), **widths)
        if self.kind == "dipole":
            scale = dipole_scale if dipole_scale is not None else rms(np.stack(labels))
            return DipoleHead(self.name, scale=scale, charges=config.dipole_charges, **widths)
        # structure_tensor: the polarizability head's statistics, per atom.
        mean, scale = polarizability_statistics(labels, sizes)
        return StructureTensorHead(self.name, channels=8, scale=scale, shift=mean,
                                   edge_basis=config.polarizability_edge_basis,
                                   cutoff=config.cutoff, **widths)

    def loss_scale(self, records: Sequence[Record]) -> float:
        """Spread of the label components over ``records``: residuals are divided by it."""
        rows = [np.asarray(self.value(r), dtype=np.float64)
                .reshape(r.n_atoms if self.per_atom else 1, -1) for r in records]
        values = np.concatenate(rows)  # (labelled rows, components)
        return _spread(values - values.mean(axis=0))


def masked_residuals(prediction: torch.Tensor, values: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """(M, k) prediction - label for the M labelled rows, components flattened."""
    rows = mask.nonzero().squeeze(-1)
    return (prediction[rows] - values[rows].to(prediction.dtype)).reshape(len(rows), -1)


def _spread(values: np.ndarray) -> float:
    value = float(np.std(values)) if values.size > 1 else 0.0
    return value if value > _TINY else 1.0
