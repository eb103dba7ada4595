"""Shared assertion helpers for the physics tests.

Every helper works on plain Records and a model, so a test reads as the
physical statement it checks::

    model = perturbed_model()
    assert_equivariant(model, ethanol(), random_orthogonal(rng, improper=True))

Tolerances are relative to the size of the expected value (``scale = max(1, |expected|)``)
so one number serves energies of any magnitude; float64 models make 1e-9 meaningful.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import ase
import ase.build
import ase.io
import numpy as np
import torch

import tridft
from tridft.data.batch import collate
from tridft.data.record import Record
from tridft.model.model import TriDFTModel, build_model

ETHANOL_FILE = Path(tridft.__file__).parent / "datasets" / "ethanol_pbe_def2svp_800.extxyz"

# Small enough to keep the physics folder fast, big enough to exercise every path.
SMALL_MODEL = {"features": 16, "layers": 2, "radial_basis": 8, "head_hidden": 16,
               "latent_scalars": 8, "latent_vectors": 4, "polarizability_channels": 4,
               "cutoff": 5.0, "dtype": "float64"}

OUTPUT_KEYS = ("energy", "forces", "conservative_forces", "polarizability")

# Every physics test runs on each backbone variant: scalars and vectors only (PaiNN),
# and with symmetric traceless rank-2 channels (read by the polarizability head too).
BACKBONES = {"painn": {"tensor_channels": 0, "latent_tensors": 0},
             "rank2": {"tensor_channels": 4, "latent_tensors": 2}}


# --------------------------------------------------------------------------- models

# The core repulsion of the physics models starts at this distance for every element
# pair: bonds to hydrogen (0.97-1.1 Angstrom) lie inside it, so every physics test covers
# the prior too (a trained model starts it at the shortest training distances).
REPULSION_ONSET = 1.2  # Angstrom


def perturbed_model(seed: int = 0, repulsion_onset: float = REPULSION_ONSET,
                    **overrides) -> TriDFTModel:
    """A small float64 model in eval mode whose weights are moved off their initialisation.

    Every parameter gets +0.1 * randn * (its own standard deviation): enough to make
    biases and gates non-trivial, small enough not to blow up through the residual layers.
    """
    torch.manual_seed(seed)
    model = build_model({**SMALL_MODEL, **overrides})
    if model.repulsion is not None:
        model.repulsion.set_onsets(torch.full((119, 119), repulsion_onset, dtype=torch.float64))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            spread = parameter.std() if parameter.numel() > 1 else parameter.abs().mean()
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.add_(0.1 * noise.to(parameter.dtype) * spread)
    return model.eval()


def model_dtype(model: TriDFTModel) -> torch.dtype:
    return next(model.parameters()).dtype


def predict(model: TriDFTModel, records: list[Record], forces: str = "both") -> dict:
    """The model's outputs for ``records`` collated into one batch, detached."""
    batch = collate(records, model.cutoff, dtype=model_dtype(model))
    outputs = model(batch, forces=forces)
    return {key: value.detach() for key, value in outputs.items()}


# --------------------------------------------------------------------------- structures

def record_from_atoms(atoms: ase.Atoms) -> Record:
    periodic = bool(np.any(atoms.pbc))
    return Record(numbers=atoms.numbers.copy(), positions=atoms.positions.copy(),
                  cell=atoms.cell.array.copy() if periodic else None,
                  pbc=np.array(atoms.pbc, dtype=bool))


@lru_cache(maxsize=None)
def _ethanol_frames() -> tuple[ase.Atoms, ...]:
    return tuple(ase.io.read(ETHANOL_FILE, index=":4"))


def ethanol(index: int = 0) -> Record:
    """One ethanol molecule (9 atoms) from the bundled dataset."""
    return record_from_atoms(_ethanol_frames()[index])


def water_box_atoms(per_side: int = 2, spacing: float = 3.11, seed: int = 0) -> ase.Atoms:
    """per_side^3 randomly oriented H2O on a cubic grid, periodic, about liquid density.

    per_side=2 gives a 6.2 Angstrom cell (smaller than twice a 5 Angstrom cutoff, so
    neighbours are seen through several images); per_side=4 gives 64 H2O in 12.4 Angstrom.
    """
    rng = np.random.default_rng(seed)
    water = ase.build.molecule("H2O")
    water.positions -= water.get_center_of_mass()
    box = ase.Atoms(cell=np.eye(3) * per_side * spacing, pbc=True)
    for index in np.ndindex(per_side, per_side, per_side):
        molecule = water.copy()
        molecule.positions = molecule.positions @ random_orthogonal(rng).T \
            + (np.array(index) + 0.5) * spacing + rng.normal(scale=0.1, size=3)
        box += molecule
    return box


def water_box(per_side: int = 2) -> Record:
    return record_from_atoms(water_box_atoms(per_side))


def rattled(atoms: ase.Atoms, seed: int, stdev: float = 0.1) -> ase.Atoms:
    atoms = atoms.copy()
    atoms.rattle(stdev=stdev, seed=seed)
    return atoms


def rocksalt_atoms() -> ase.Atoms:
    """NaCl conventional cube, a = 5.64 Angstrom (8 atoms), rattled: the cell is smaller than
    twice the 5 Angstrom cutoff, so atoms see several images of each neighbour."""
    return rattled(ase.build.bulk("NaCl", "rocksalt", a=5.64, cubic=True), seed=1)


def silicon_atoms() -> ase.Atoms:
    """Si in its 2-atom primitive (oblique) fcc cell, edge 3.84 Angstrom, rattled: a
    non-orthogonal cell shorter than the cutoff, so atoms see images of themselves."""
    return rattled(ase.build.bulk("Si", "diamond", a=5.43), seed=2)


def rocksalt() -> Record:
    return record_from_atoms(rocksalt_atoms())


def silicon() -> Record:
    return record_from_atoms(silicon_atoms())


def dimer(distance: float, numbers=(8, 1)) -> Record:
    """Two atoms on a slanted axis (so no component is zero by symmetry)."""
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    return Record(numbers=np.array(numbers),
                  positions=np.stack([np.zeros(3), distance * axis]))


def side_by_side(first: Record, second: Record, gap: float) -> Record:
    """Two molecules in one record, the second moved so they are ``gap`` apart or more."""
    span = first.positions.max(0) - second.positions.min(0)
    offset = np.array([span[0] + gap, 0.0, 0.0])
    return Record(numbers=np.concatenate([first.numbers, second.numbers]),
                  positions=np.concatenate([first.positions, second.positions + offset]))


# --------------------------------------------------------------------------- symmetry operations

def random_orthogonal(generator: np.random.Generator, improper: bool = False) -> np.ndarray:
    """A uniformly random rotation (det +1), or rotation-inversion (det -1) if ``improper``."""
    q, r = np.linalg.qr(generator.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # Haar-uniform: fix the sign ambiguity of QR
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return -q if improper else q


def transformed(record: Record, rotation: np.ndarray | None = None,
                translation: np.ndarray | None = None) -> Record:
    """x -> R x + t for every atom; the cell's lattice vectors (rows) rotate too."""
    rotation = np.eye(3) if rotation is None else rotation
    translation = np.zeros(3) if translation is None else translation
    cell = None if record.cell is None else record.cell @ rotation.T
    return replace(record, positions=record.positions @ rotation.T + translation, cell=cell)


def permuted(record: Record, order: np.ndarray) -> Record:
    return replace(record, numbers=record.numbers[order], positions=record.positions[order])


# --------------------------------------------------------------------------- assertions

def assert_close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, what: str):
    """|actual - expected| <= tolerance * max(1, max |expected|), elementwise."""
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    error = float((actual - expected).abs().max()) if expected.numel() else 0.0
    assert error <= tolerance * scale, \
        f"{what}: max deviation {error:.3e} > {tolerance:.1e} (scale {scale:.3g})"


def assert_nontrivial(outputs: dict, keys=OUTPUT_KEYS, floor: float = 1e-5):
    """The outputs a symmetry test compares must not be (nearly) zero, or it could not fail."""
    for key in keys:
        if key in outputs:
            size = float(outputs[key].abs().max())
            assert size > floor, f"{key} is trivially small ({size:.2e}); the test is vacuous"


def assert_equivariant(model: TriDFTModel, record: Record, rotation: np.ndarray,
                       translation: np.ndarray | None = None, tolerance: float = 1e-9):
    """E(3): energy invariant, forces -> R F, polarizability -> R a R^T under x -> R x + t."""
    before = predict(model, [record])
    after = predict(model, [transformed(record, rotation, translation)])
    assert_nontrivial(before)
    R = torch.as_tensor(rotation, dtype=torch.float64)
    assert_close(after["energy"], before["energy"], tolerance, "energy")
    for key in ("forces", "conservative_forces"):
        assert_close(after[key], before[key] @ R.T, tolerance, key)
    assert_close(after["polarizability"], R @ before["polarizability"] @ R.T, tolerance,
                 "polarizability")


def finite_difference_forces(model: TriDFTModel, record: Record,
                             step: float = 1e-5) -> torch.Tensor:
    """(n, 3) eV/A: -(E(x + h e) - E(x - h e)) / 2h for every atom and axis, one batch."""
    displaced = []
    for atom in range(record.n_atoms):
        for axis in range(3):
            for sign in (+1.0, -1.0):
                positions = record.positions.copy()
                positions[atom, axis] += sign * step
                displaced.append(replace(record, positions=positions))
    energies = predict(model, displaced, forces="direct")["energy"].reshape(-1, 3, 2)
    return -(energies[..., 0] - energies[..., 1]) / (2 * step)
