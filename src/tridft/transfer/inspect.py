"""What a trained model's latent carries, and which heads read which channel.

    report = inspect_latent(model, records)      # KL per channel, channels x heads attribution
    atoms = atomic_contributions(model, records[k])   # per-atom energy and polarizability
    write_inspection(report, atoms, "out/ethanol")    # .json, .png, _atoms.extxyz

Information: the mean over atoms of KL(q(z|x) || N(0, 1)) of each scalar latent
channel, in nats. A channel whose KL is ~0 carries no information about the
structure (its posterior is the prior everywhere): it is unused.

Attribution by ablation: a scalar channel is replaced by its mean over the dataset
(a vector channel by zero, the only equivariant constant) and every head is run
again on the modified latent. The entry for (channel, head) is the mean absolute
change of the head's output divided by the mean absolute deviation of that output
over the dataset: 1 means removing the channel moves the prediction as much as
it varies between structures.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import ase
import ase.io
import numpy as np
import torch

from tridft.data.batch import collate
from tridft.data.dataset import GraphDataset
from tridft.data.record import Record
from tridft.errors import InputError
from tridft.extras import require_matplotlib
from tridft.files import atomic_output, write_json_atomic
from tridft.model.bottleneck import Latent
from tridft.model.extra_heads import AtomScalarHead, DipoleHead, StructureScalarHead
from tridft.model.heads import EnergyHead, PolarizabilityHead
from tridft.model.model import ENERGY, POLARIZABILITY, TriDFTModel

logger = logging.getLogger(__name__)

# Mean KL (nats per atom) below which a channel counts as unused.
UNUSED_KL = 0.01
EVALUATION_BATCH = 64


@dataclass
class LatentReport:
    """Per-channel information and attribution over a dataset.

    channels:     names, "s0".."s{Ls-1}" (scalar) then "v0".."v{Lv-1}" (vector)
    kl:           (Ls,) nats, mean KL of each scalar channel over atoms (zeros when the
                  latent is not variational)
    heads:        head names (columns of ``attribution``)
    attribution:  (Ls + Lv, heads) relative change of each head when a channel is ablated
    variational:  whether the latent has a posterior variance (else KL is meaningless)
    """

    channels: list[str]
    kl: np.ndarray
    heads: list[str]
    attribution: np.ndarray
    variational: bool
    n_structures: int
    n_atoms: int

    @property
    def scalar_channels(self) -> list[str]:
        return self.channels[:len(self.kl)]

    def kl_order(self) -> list[int]:
        """Scalar channel indices, most informative first."""
        return [int(i) for i in np.argsort(-self.kl, kind="stable")]

    def unused_channels(self) -> list[str]:
        if not self.variational:
            return []
        return [self.channels[i] for i in range(len(self.kl)) if self.kl[i] < UNUSED_KL]

    def to_dict(self) -> dict:
        return {
            "n_structures": self.n_structures, "n_atoms": self.n_atoms,
            "variational": self.variational,
            "kl_nats_per_atom": {self.channels[i]: float(self.kl[i]) for i in self.kl_order()},
            "unused_channels": self.unused_channels(),
            "attribution": {channel: {head: float(self.attribution[c, h])
                                      for h, head in enumerate(self.heads)}
                            for c, channel in enumerate(self.channels)},
        }

    def table(self) -> str:
        """The channels x heads table as text, scalar channels sorted by KL, then vectors."""
        order = self.kl_order() + list(range(len(self.kl), len(self.channels)))
        width = max([8] + [len(h) for h in self.heads])
        lines = [f"{'channel':<8} {'KL/nats':>8} " + " ".join(f"{h:>{width}}" for h in self.heads)]
        for c in order:
            kl = f"{self.kl[c]:8.4f}" if c < len(self.kl) else f"{'-':>8}"
            values = " ".join(f"{self.attribution[c, h]:>{width}.3f}"
                              for h in range(len(self.heads)))
            lines.append(f"{self.channels[c]:<8} {kl} {values}")
        return "\n".join(lines)


def inspect_latent(model: TriDFTModel, records: Sequence[Record]) -> LatentReport:
    """KL per scalar channel and the ablation attribution table over ``records``."""
    if not records:
        raise InputError("no structures to inspect")
    model.eval()
    dataset = GraphDataset(records, model.cutoff)
    dtype = next(model.parameters()).dtype
    batches, latents = [], []
    with torch.no_grad():
        for batch in dataset.batches(batch_size=EVALUATION_BATCH, dtype=dtype):
            batches.append(batch)
            latents.append(model.latent(batch))
    heads = _runnable_heads(model, latents[0], batches[0])
    all_scalars = torch.cat([latent.scalars for latent in latents])  # (N, Ls)
    channel_means = all_scalars.mean(dim=0)
    kl = torch.cat([latent.kl_per_channel() for latent in latents]).mean(dim=0)
    n_scalars, n_vectors = all_scalars.shape[1], latents[0].vectors.shape[-1]

    with torch.no_grad():
        baseline = {name: [model.heads[name](latent, batch)
                           for latent, batch in zip(latents, batches)] for name in heads}
        spread = {name: _mean_abs_deviation(torch.cat(outputs)) for name, outputs
                  in baseline.items()}
        attribution = np.zeros((n_scalars + n_vectors, len(heads)))
        for channel in range(n_scalars + n_vectors):
            changes = {name: [] for name in heads}
            for latent, batch, k in zip(latents, batches, range(len(batches))):
                ablated = _ablate(latent, channel, channel_means)
                for name in heads:
                    change = model.heads[name](ablated, batch) - baseline[name][k]
                    changes[name].append(change.abs().reshape(change.shape[0], -1))
            for h, name in enumerate(heads):
                attribution[channel, h] = float(torch.cat(changes[name]).mean()) / spread[name]
    channels = [f"s{i}" for i in range(n_scalars)] + [f"v{i}" for i in range(n_vectors)]
    return LatentReport(channels=channels, kl=kl.double().numpy(), heads=heads,
                        attribution=attribution,
                        variational=latents[0].log_var is not None,
                        n_structures=len(records), n_atoms=int(all_scalars.shape[0]))


def _runnable_heads(model: TriDFTModel, latent: Latent, batch) -> list[str]:
    """Head names that run on this data (a dipole head refuses periodic cells)."""
    names = []
    with torch.no_grad():
        for name, head in model.heads.items():
            try:
                head(latent, batch)
            except InputError as error:
                logger.warning("head '%s' left out of the attribution: %s", name, error)
                continue
            names.append(name)
    return names


def _ablate(latent: Latent, channel: int, channel_means: torch.Tensor) -> Latent:
    """The latent with one scalar channel set to its mean, or one vector channel to zero."""
    n_scalars = latent.scalars.shape[1]
    if channel < n_scalars:
        scalars = latent.scalars.clone()
        scalars[:, channel] = channel_means[channel]
        return replace(latent, scalars=scalars, mean=scalars)
    vectors = latent.vectors.clone()
    vectors[..., channel - n_scalars] = 0.0
    return replace(latent, vectors=vectors)


def _mean_abs_deviation(outputs: torch.Tensor) -> float:
    """Mean |y - mean(y)| over rows and components; 1 when the output does not vary."""
    flat = outputs.reshape(outputs.shape[0], -1).double()
    value = float((flat - flat.mean(dim=0)).abs().mean())
    return value if value > 1e-12 else 1.0


# --- per-atom contributions ----------------------------------------------------------------


def atomic_contributions(model: TriDFTModel, record: Record) -> ase.Atoms:
    """The structure with its predicted per-atom contributions as arrays.

    arrays:  atomic_energy (n,) eV            the energy head's per-atom terms (sum = energy)
             atomic_polarizability (n, 9) A^3 per-atom tensors, row-major (sum = polarizability)
             atomic_polarizability_iso (n,)   trace / 3 of the per-atom tensor
             <name>_charge (n,) e             for a dipole head <name>
             atomic_<name> (n,)               for a structure_scalar head, its per-atom terms
             <name> (n,)                      for an atom_scalar head
    info:    the predicted energy and polarizability of the structure
    """
    model.eval()
    dtype = next(model.parameters()).dtype
    batch = collate([record], model.cutoff, dtype=dtype)
    atoms = ase.Atoms(numbers=record.numbers, positions=record.positions,
                      cell=np.zeros((3, 3)) if record.cell is None else record.cell,
                      pbc=record.pbc)
    with torch.no_grad():
        latent = model.latent(batch)
        for name, head in model.heads.items():
            for key, value in _per_atom_arrays(name, head, latent, batch).items():
                atoms.arrays[key] = value.double().numpy()
        if "atomic_energy" in atoms.arrays and getattr(model, "repulsion", None) is not None:
            # The core repulsion's share (zero inside the training domain).
            atoms.arrays["atomic_energy"] += model.repulsion.atomic_energies(batch).double().numpy()
    if "atomic_energy" in atoms.arrays:
        atoms.info["energy"] = float(atoms.arrays["atomic_energy"].sum())
    if "atomic_polarizability" in atoms.arrays:
        atoms.info["polarizability"] = atoms.arrays["atomic_polarizability"].sum(axis=0)
    if record.source:
        atoms.info["source"] = record.source
    return atoms


def _per_atom_arrays(name: str, head, latent: Latent, batch) -> dict[str, torch.Tensor]:
    if name == ENERGY and isinstance(head, EnergyHead):
        return {"atomic_energy": head.atomic_energies(latent, batch)}
    if name == POLARIZABILITY and isinstance(head, PolarizabilityHead):
        tensors = head.atomic_polarizabilities(latent, batch)  # (n, 3, 3)
        return {"atomic_polarizability": tensors.reshape(-1, 9),
                "atomic_polarizability_iso": tensors.diagonal(dim1=1, dim2=2).mean(-1)}
    if isinstance(head, DipoleHead) and not bool(batch.pbc.any()):
        return {f"{name}_charge": head.atomic_charges(latent, batch)}
    if isinstance(head, StructureScalarHead):
        return {f"atomic_{name}": head.atomic_contributions(latent, batch)}
    if isinstance(head, AtomScalarHead):
        return {name: head(latent, batch)}
    return {}


# --- writing -----------------------------------------------------------------------------


def write_inspection(report: LatentReport, atoms: ase.Atoms | None,
                     prefix: str | os.PathLike) -> list[Path]:
    """Write PREFIX.json (the report), PREFIX.png (plots) and PREFIX_atoms.extxyz."""
    prefix = Path(prefix)
    written = [prefix.with_name(prefix.name + ".json"), prefix.with_name(prefix.name + ".png")]
    write_json_atomic(written[0], report.to_dict())
    with atomic_output(written[1]) as temporary:
        plot_latent(report, temporary)
    if atoms is not None:
        written.append(prefix.with_name(prefix.name + "_atoms.extxyz"))
        with atomic_output(written[-1]) as temporary:
            ase.io.write(temporary, atoms, format="extxyz")
    return written


def plot_latent(report: LatentReport, path: str | os.PathLike) -> None:
    """A PNG: KL per scalar channel (bar chart, sorted) and the attribution heat map."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    kl_axes, map_axes = figure.subplots(1, 2, width_ratios=(1, 1.2))
    order = report.kl_order()
    kl_axes.bar(range(len(order)), report.kl[order], color="tab:blue")
    kl_axes.axhline(UNUSED_KL, color="grey", lw=0.8, ls="--", label=f"unused < {UNUSED_KL}")
    kl_axes.set_xticks(range(len(order)), [report.channels[i] for i in order], rotation=90)
    kl_axes.set_ylabel("mean KL per atom (nats)")
    kl_axes.set_title("information per scalar latent channel"
                      + ("" if report.variational else " (not variational)"))
    kl_axes.legend(loc="upper right")
    rows = order + list(range(len(report.kl), len(report.channels)))
    image = map_axes.imshow(report.attribution[rows], aspect="auto", cmap="viridis")
    map_axes.set_yticks(range(len(rows)), [report.channels[i] for i in rows])
    map_axes.set_xticks(range(len(report.heads)), report.heads, rotation=30, ha="right")
    map_axes.set_title("change of each head when a channel is ablated")
    figure.colorbar(image, ax=map_axes, label="mean |change| / mean |deviation|")
    figure.savefig(path, format="png", dpi=110)
