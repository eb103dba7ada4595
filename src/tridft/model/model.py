"""The tri-module model: backbone -> bottleneck -> heads.

    latent = bottleneck(backbone(batch))
    outputs = {head.name: head(latent, batch) for head in heads}

Output keys and shapes (internal units, S structures, N atoms):

    energy               (S,)       eV
    forces               (N, 3)     eV/Angstrom, from the direct force head
    conservative_forces  (N, 3)     eV/Angstrom, -dE/dR by autograd (when asked for;
                                    models with an energy head)
    polarizability       (S, 3, 3)  Angstrom^3
    <extra head name>    (S, ...) or (N, ...)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from tridft.data.batch import Batch
from tridft.model.backbone import PaiNNBackbone
from tridft.model.bottleneck import Bottleneck, IdentityBottleneck, Latent
from tridft.model.config import ModelConfig
from tridft.model.heads import (DirectForceHead, EnergyHead, Head, PolarizabilityHead,
                                build_head)
from tridft.model.repulsion import CoreRepulsion

ENERGY = "energy"
FORCES = "forces"
CONSERVATIVE_FORCES = "conservative_forces"
POLARIZABILITY = "polarizability"

ForceMode = Literal["direct", "conservative", "both"]
FORCE_MODES = ("direct", "conservative", "both")


class TriDFTModel(nn.Module):
    """A shared backbone, a latent bottleneck and named heads."""

    def __init__(self, config: ModelConfig, backbone: nn.Module, bottleneck: nn.Module,
                 heads: list[Head], elements: list[int]):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.bottleneck = bottleneck
        self.heads = nn.ModuleDict({head.name: head for head in heads})
        self.elements = sorted(int(z) for z in elements)  # atomic numbers seen in training
        # Zero until set_onsets gives it the training set's shortest distances.
        self.repulsion = CoreRepulsion() if config.core_repulsion else None

    @property
    def cutoff(self) -> float:
        return self.config.cutoff

    def latent(self, batch: Batch) -> Latent:
        """The per-atom latent shared by all heads."""
        return self.bottleneck(self.backbone(batch))

    def forward(self, batch: Batch, forces: ForceMode = "direct") -> dict[str, torch.Tensor]:
        """Every head's prediction; ``forces`` picks direct, conservative (-dE/dR) or both.

        Heads undefined in periodic cells (a dipole) are left out of a batch that holds
        a periodic structure: a model trained on molecules still runs on crystals.

        Conservative forces keep the autograd graph while training (create_graph) so
        that losses on them, and the Jacobian regularizer, can be differentiated.
        """
        if forces not in FORCE_MODES:
            raise ValueError(f"forces must be one of {FORCE_MODES}, not '{forces}'")
        if forces == "conservative" and ENERGY not in self.heads:
            raise ValueError("the model has no energy head: no conservative forces -dE/dR")
        # "both" gives -dE/dR only where there is an energy head.
        want_conservative = forces in ("conservative", "both") and ENERGY in self.heads
        with torch.set_grad_enabled(torch.is_grad_enabled() or want_conservative):
            if want_conservative:
                batch = replace(batch, positions=batch.positions.detach().requires_grad_(True))
            latent = self.latent(batch)
            periodic = bool(batch.pbc.any())
            outputs = {name: head(latent, batch) for name, head in self.heads.items()
                       if not (forces == "conservative" and name == FORCES)
                       and (head.periodic or not periodic)}
            if self.repulsion is not None and (ENERGY in outputs or FORCES in outputs):
                repulsion_energy, repulsion_forces = self.repulsion(batch)
                if ENERGY in outputs:
                    outputs[ENERGY] = outputs[ENERGY] + repulsion_energy
                if FORCES in outputs:
                    outputs[FORCES] = outputs[FORCES] + repulsion_forces
            if want_conservative:
                (gradient,) = torch.autograd.grad(outputs[ENERGY].sum(), batch.positions,
                                                  create_graph=self.training)
                outputs[CONSERVATIVE_FORCES] = -gradient
        outputs["latent_kl"] = latent.kl_per_channel()  # (N, Ls) nats, for the KL penalty
        return outputs

    def add_head(self, head: Head) -> None:
        """Attach a new head to the latent (see tridft finetune)."""
        if head.name in self.heads:
            raise ValueError(f"the model already has a head named '{head.name}'")
        self.heads[head.name] = head

    def head_specs(self) -> list[dict]:
        return [head.spec() for head in self.heads.values()]


STANDARD_HEADS = (ENERGY, FORCES, POLARIZABILITY)


def build_model(config: ModelConfig | dict | None = None, stats=None,
                head_specs: list[dict] | None = None,
                heads: tuple[str, ...] | list[str] = STANDARD_HEADS) -> TriDFTModel:
    """A model from its configuration, initialised with dataset statistics.

    ``stats`` (a tridft.data.stats.DatasetStats) sets reference energies, output
    scales and the neighbour normalisation; without it everything is neutral.
    ``heads`` picks which of the standard heads (energy, forces, polarizability) to
    build (training builds those of the labels it has, see tridft.train.tasks);
    ``head_specs`` rebuilds the heads of a saved model instead.

    >>> model = build_model({"features": 16, "layers": 1})
    >>> sorted(model.heads)
    ['energy', 'forces', 'polarizability']
    """
    if config is None:
        config = ModelConfig()
    elif isinstance(config, dict):
        config = ModelConfig(**config)
    dtype = torch.float64 if config.dtype == "float64" else torch.float32
    Ls, Lv, hidden = config.latent_scalar_width, config.latent_vector_width, config.head_hidden

    def stat(name: str, default: float) -> float:
        value = getattr(stats, name, None) if stats is not None else None
        return float(value) if value is not None else default

    backbone = PaiNNBackbone(config.features, config.layers, config.cutoff, config.radial_basis,
                             config.envelope_exponent,
                             stat("average_neighbors", 1.0), config.message_normalization,
                             config.tensor_channels)
    if config.compressed:
        bottleneck = Bottleneck(config.features, Ls, Lv, config.variational, config.vector_gate,
                                config.tensor_channels, config.latent_tensors)
    else:
        bottleneck = IdentityBottleneck()

    if head_specs is not None:
        heads = [build_head(spec) for spec in head_specs]
    else:
        references = None
        if stats is not None and getattr(stats, "reference_energies", None):
            references = [0.0] * 119
            for z, energy in dict(stats.reference_energies).items():
                references[int(z)] = float(energy)
        unknown = sorted(set(heads) - set(STANDARD_HEADS))
        if unknown:
            raise ValueError(f"unknown standard head '{unknown[0]}' "
                             f"(known: {', '.join(STANDARD_HEADS)})")
        standard = {
            ENERGY: lambda: EnergyHead(
                ENERGY, Ls, Lv, hidden, scale=stat("energy_per_atom_scale", 1.0),
                shift=stat("energy_per_atom_shift", 0.0), reference_energies=references,
                reference_support=getattr(stats, "reference_support", None) or None),
            FORCES: lambda: DirectForceHead(FORCES, Ls, Lv, hidden,
                                            scale=stat("forces_rms", 1.0)),
            POLARIZABILITY: lambda: PolarizabilityHead(
                POLARIZABILITY, Ls, Lv, hidden, config.polarizability_channels,
                scale=stat("polarizability_scale", 1.0),
                shift=stat("polarizability_per_atom_mean", 0.0),
                edge_basis=config.polarizability_edge_basis, cutoff=config.cutoff,
                tensor_channels=config.latent_tensor_width),
        }
        heads = [standard[name]() for name in STANDARD_HEADS if name in heads]
    elements = list(getattr(stats, "elements", []) or []) if stats is not None else []
    model = TriDFTModel(config, backbone, bottleneck, heads, elements)
    return model.to(dtype)
