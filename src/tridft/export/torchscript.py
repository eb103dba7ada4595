"""A trained model as one TorchScript file that any PyTorch process can run, without tridft.

    export_model(load_model("runs/demo/model.pt"), "model.ts")

    # elsewhere: only torch is needed
    program = torch.jit.load("model.ts")
    out = program(positions, numbers, cell, pbc)
    out["energy"], out["forces"], out["polarizability"], out["stress"]

The program's ``forward(positions, numbers, cell, pbc)`` takes one structure:

    positions  (N, 3)  float   Angstrom (any float dtype; cast to the model's)
    numbers    (N,)    long    atomic numbers
    cell       (3, 3)  float   Angstrom, rows are lattice vectors (zeros for a molecule)
    pbc        (3,)    bool    all False (molecule) or all True (periodic cell)

builds the neighbour list itself (tridft.export.neighbors, brute force) and returns

    energy               (1,)       float64  eV
    forces               (N, 3)     eV/Angstrom   the direct force head
    conservative_forces  (N, 3)     eV/Angstrom   -dE/dR (autograd inside TorchScript)
    stress               (3, 3)     eV/Angstrom^3 (1/V) dE/d(strain), ASE's sign; zeros
                                                  for a molecule
    polarizability       (1, 3, 3)  Angstrom^3
    <extra head>         as in the Python model (dipole (1, 3) e*Angstrom, ...; the
                         dipole only for molecules: it is undefined in a cell)

``compute(positions, numbers, cell, pbc, edge_index, cell_shifts)`` does the same
with a neighbour list of your own (edge_index (2, E) long [centers i, neighbours j],
cell_shifts (E, 3) float with r_ij = x_j - x_i + cell_shifts @ cell, every pair within
``cutoff`` in both directions). ``program.cutoff`` is the cutoff in Angstrom; the
file's extra entry ``tridft.json`` says the units, inputs, outputs and elements.

How it is built: the model's forward pass (backbone, bottleneck, heads) is traced
with torch.jit.trace on a thin wrapper that turns plain tensors into a Batch; the
neighbour list, the strain and the autograd for forces and stress are scripted
around it. The export checks the program against the Python model on a molecule
and a periodic cell of different sizes before it returns (ExportError otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Dict

import numpy as np
import torch
from torch import nn

from tridft.data.batch import Batch, collate
from tridft.data.record import Record
from tridft.errors import TriDFTError
from tridft.export.neighbors import neighbor_list
from tridft.files import atomic_output
from tridft.model.inference import run_model

logger = logging.getLogger(__name__)

FORMAT = "tridft-torchscript"
FORMAT_VERSION = 1
TOLERANCE = 1e-5  # relative, on energy and forces


class ExportError(TriDFTError):
    """The exported program could not be built or does not reproduce the model."""


class _TracedCore(nn.Module):
    """(positions, numbers, cell, edge_index, cell_shifts) of one structure -> the heads'
    outputs as a tuple, in the order of ``names``. Only this part is traced, once for
    molecules and once for periodic cells (``periodic``): the model may branch on
    ``Batch.pbc``, and a trace keeps only the branch it saw."""

    def __init__(self, model: nn.Module, names: list[str], periodic: bool):
        super().__init__()
        self.model = model
        self.names = names
        self.periodic = periodic

    def forward(self, positions, numbers, cell, edge_index, cell_shifts):
        structure_index = torch.zeros_like(numbers)
        n_atoms = torch.ones_like(numbers).sum().reshape(1)
        zeros = positions.new_zeros(1)
        no = torch.zeros(1, dtype=torch.bool)
        batch = Batch(numbers=numbers, positions=positions, structure_index=structure_index,
                      n_atoms=n_atoms, cell=cell.unsqueeze(0),
                      pbc=(torch.ones if self.periodic else torch.zeros)(1, 3,
                                                                         dtype=torch.bool),
                      edge_index=edge_index,
                      cell_shifts=cell_shifts, energy=zeros.double(), energy_mask=no,
                      forces=torch.zeros_like(positions),
                      forces_mask=torch.zeros_like(numbers, dtype=torch.bool),
                      polarizability=positions.new_zeros(1, 3, 3), polarizability_mask=no,
                      dipole=positions.new_zeros(1, 3), dipole_mask=no, extra={}, atom_extra={})
        outputs = self.model(batch, forces="direct")
        # A head the model leaves out here (a dipole in a cell): an empty placeholder, so
        # that both traces return tuples of one type.
        return tuple(outputs[name] if name in outputs else positions.new_zeros(0)
                     for name in self.names)


class ExportedModel(nn.Module):
    """The scripted program (see the module docstring)."""

    def __init__(self, molecule_core: torch.jit.ScriptModule,
                 periodic_core: torch.jit.ScriptModule, names: list[str],
                 periodic_names: list[str], cutoff: float, dtype: torch.dtype):
        super().__init__()
        self.molecule_core = molecule_core
        self.periodic_core = periodic_core
        self.names = names
        self.periodic_names = periodic_names  # without heads undefined in cells (dipole)
        self.cutoff = float(cutoff)
        self.register_buffer("dtype_probe", torch.zeros(0, dtype=dtype))

    def forward(self, positions: torch.Tensor, numbers: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor) -> Dict[str, torch.Tensor]:
        edge_index, cell_shifts = neighbor_list(positions, cell, pbc, self.cutoff)
        return self.compute(positions, numbers, cell, pbc, edge_index, cell_shifts)

    @torch.jit.export
    def compute(self, positions: torch.Tensor, numbers: torch.Tensor, cell: torch.Tensor,
                pbc: torch.Tensor, edge_index: torch.Tensor,
                cell_shifts: torch.Tensor) -> Dict[str, torch.Tensor]:
        dtype = self.dtype_probe.dtype
        periodic = bool(pbc.any())
        # Centred in float64 before the cast, as tridft's batches are.
        centred = positions.to(torch.float64)
        centred = (centred - centred.mean(dim=0)).to(dtype).detach().requires_grad_(True)
        strain = torch.zeros(3, 3, dtype=dtype).requires_grad_(True)
        deformation = torch.eye(3, dtype=dtype) + 0.5 * (strain + strain.t())
        box = cell.to(dtype)
        inputs = (centred @ deformation.t(), numbers.to(torch.long), box @ deformation.t(),
                  edge_index.to(torch.long), cell_shifts.to(dtype))
        if periodic:
            values = self.periodic_core(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4])
        else:
            values = self.molecule_core(inputs[0], inputs[1], torch.zeros_like(inputs[2]),
                                        inputs[3], inputs[4])
        outputs: Dict[str, torch.Tensor] = {}
        for k in range(len(self.names)):
            if not periodic or self.names[k] in self.periodic_names:
                outputs[self.names[k]] = values[k]
        gradients = torch.autograd.grad([outputs["energy"].sum()], [centred, strain])
        gradient, virial = gradients[0], gradients[1]
        assert gradient is not None and virial is not None
        outputs["conservative_forces"] = -gradient
        stress = torch.zeros(3, 3, dtype=torch.float64)
        if periodic:
            stress = virial.to(torch.float64) / torch.linalg.det(box.to(torch.float64)).abs()
        outputs["stress"] = stress
        return {name: value.detach() for name, value in outputs.items()}


def build_program(model) -> torch.jit.ScriptModule:
    """The scripted program of ``model`` (eval mode, its own dtype, on the CPU)."""
    model = model.eval().cpu()
    dtype = next(model.parameters()).dtype
    names = list(model.heads)
    periodic_names = [name for name, head in model.heads.items() if head.periodic]
    molecule, crystal = _example_structures(model)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # TracerWarnings about constants (one structure per call), and torch >= 2.10
            # calling torch.jit deprecated (it still works; see docs/export.md).
            warnings.simplefilter("ignore")
            molecule_core = _trace(model, names, molecule)
            periodic_core = _trace(model, names, crystal)
            return torch.jit.script(ExportedModel(molecule_core, periodic_core, names,
                                                  periodic_names, model.cutoff, dtype))
    except (RuntimeError, TypeError, ValueError, torch.jit.Error) as error:
        detail = " ".join(str(error).split())[:200]
        raise ExportError(f"the model could not be turned into TorchScript ({detail})") \
            from None


def _trace(model, names: list[str], example: Record) -> torch.jit.ScriptModule:
    batch = collate([example], model.cutoff, dtype=next(model.parameters()).dtype)
    inputs = (batch.positions, batch.numbers, batch.cell[0], batch.edge_index,
              batch.cell_shifts)
    return torch.jit.trace(_TracedCore(model, names, example.is_periodic), inputs,
                           check_trace=False)


def export_model(model, path: str | os.PathLike, check: bool = True) -> dict:
    """Write the TorchScript program of ``model`` to ``path`` (atomically); return the
    largest relative deviations from the Python model on the check structures."""
    program = build_program(model)
    deviations = check_program(program, model) if check else {}
    with atomic_output(path) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(program, str(temporary),
                       _extra_files={"tridft.json": json.dumps(describe(model, deviations))})
    return deviations


def describe(model, deviations: dict) -> dict:
    """The plain description saved in the file as ``tridft.json``."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "cutoff_angstrom": model.cutoff, "elements": list(model.elements),
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "inputs": {"positions": "(N, 3) Angstrom", "numbers": "(N,) long",
                       "cell": "(3, 3) Angstrom, rows are lattice vectors",
                       "pbc": "(3,) bool, all False or all True"},
            "units": {"energy": "eV", "forces": "eV/Angstrom",
                      "conservative_forces": "eV/Angstrom", "stress": "eV/Angstrom^3",
                      "polarizability": "Angstrom^3", "dipole": "e*Angstrom"},
            "outputs": list(model.heads) + ["conservative_forces", "stress"],
            "check_deviations": deviations}


def check_program(program, model) -> dict:
    """Largest relative deviation of the program from ``model`` per output (ExportError
    above TOLERANCE for energy and forces) on a molecule and a periodic cell."""
    dtype = next(model.parameters()).dtype
    worst: dict[str, float] = {}
    for record in _example_structures(model):
        batch = collate([record], model.cutoff, dtype=dtype)
        expected = run_model(model, batch, forces="both", stress=record.is_periodic)
        cell = np.zeros((3, 3)) if record.cell is None else record.cell
        got = program(torch.tensor(record.positions), torch.tensor(record.numbers),
                      torch.tensor(cell), torch.tensor(np.asarray(record.pbc)))
        for name in ("energy", "forces", "conservative_forces", "polarizability", "stress"):
            if name not in expected or name not in got:
                continue
            reference = expected[name].double().reshape(got[name].shape)
            scale = max(float(reference.abs().max()), 1e-12)
            deviation = float((got[name].double() - reference).abs().max()) / scale
            worst[name] = max(worst.get(name, 0.0), deviation)
    bad = {k: v for k, v in worst.items() if k in ("energy", "forces", "conservative_forces")
           and v > TOLERANCE}
    if bad:
        raise ExportError("the exported program does not reproduce the model: "
                          + ", ".join(f"{k} off by {v:.1e} (relative)" for k, v in bad.items()))
    return worst


def _example_structures(model) -> list[Record]:
    """A 5-atom molecule and a 12-atom periodic cell of the model's elements (H, C, O
    when it lists none): random but not too close, only used to trace and check."""
    elements = list(model.elements) or [1, 6, 8]
    rng = np.random.default_rng(0)

    def spread(n: int, box: float) -> np.ndarray:
        points = [rng.uniform(0, box, 3)]
        while len(points) < n:
            candidate = rng.uniform(0, box, 3)
            if min(np.linalg.norm(candidate - p) for p in points) > 1.0:
                points.append(candidate)
        return np.array(points)

    numbers = np.array([elements[k % len(elements)] for k in range(12)])
    molecule = Record(numbers=numbers[:5], positions=spread(5, 3.0))
    cell = np.array([[5.0, 0.0, 0.0], [0.8, 5.2, 0.0], [0.3, -0.5, 5.5]])
    crystal = Record(numbers=numbers, positions=spread(12, 5.0) @ (cell / 5.0),
                     cell=cell, pbc=np.ones(3, dtype=bool))
    return [molecule, crystal]
