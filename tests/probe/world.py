"""The files the probe cases work on: good data, a tiny trained model, and broken things.

``build_world(folder)`` trains one tiny model (a few steps, seconds) through the command
line and writes every input file the cases need; ``World`` holds their paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch
import yaml

from tests.train.tiny import TINY_MODEL, write_ethanol_subset
from tridft.cli.main import main
from tridft.model.persistence import load_model, save_model

TRAINING = {"batch_size": 4, "max_steps": 2, "validate_every": 2, "checkpoint_every": 2,
            "log_every": 1, "gradient_cosine_every": None, "warmup_steps": 1,
            "num_threads": 1, "ema_decay": 0.0}


@dataclass
class World:
    root: Path
    data: Path  # 12 labelled ethanol structures
    model: Path  # a tiny trained model (with its domain)
    run: Path  # the run folder of that model
    start: Path  # one ethanol structure, no labels

    def path(self, name: str) -> Path:
        return self.root / name

    def config(self, name: str, run_dir: str | Path, train_file: Path | None = None,
               **sections) -> Path:
        """A small training configuration; ``sections`` update the defaults."""
        values = {"run_dir": str(run_dir),
                  "data": {"train": str(train_file or self.data),
                           "split": {"validation": 2, "test": 0, "seed": 0}},
                  "model": dict(TINY_MODEL), "training": dict(TRAINING)}
        for section, changes in sections.items():
            if isinstance(changes, dict):
                values[section] = {**values.get(section, {}), **changes}
            else:
                values[section] = changes
        path = self.root / name
        path.write_text(yaml.safe_dump(values))
        return path


def build_world(root: Path) -> World:
    data = write_ethanol_subset(root / "data.extxyz", 12)
    world = World(root=root, data=data, model=root / "base" / "model.pt", run=root / "base",
                  start=root / "start.xyz")
    config = world.config("base.yaml", world.run, training={**TRAINING, "max_steps": 6})
    assert main(["train", str(config), "--no-progress"]) == 0
    ethanol = ethanol_atoms(world)
    ase.io.write(world.start, ethanol, format="extxyz")
    return world


def ethanol_atoms(world: World, index: int = 0) -> ase.Atoms:
    atoms = ase.io.read(world.data, index=index)
    return ase.Atoms(numbers=atoms.numbers, positions=atoms.positions)


def write_structure(world: World, name: str, atoms: ase.Atoms | list[ase.Atoms]) -> Path:
    path = world.path(name)
    ase.io.write(path, atoms, format="extxyz")
    return path


def scaled(world: World, factor: float) -> ase.Atoms:
    atoms = ethanol_atoms(world)
    atoms.positions = atoms.positions * factor
    return atoms


def in_cell(world: World, length: float) -> ase.Atoms:
    atoms = ethanol_atoms(world)
    atoms.positions -= atoms.positions.mean(axis=0) - length / 2
    atoms.set_cell(np.eye(3) * length)
    atoms.pbc = True
    return atoms


def far_atom(world: World, distance: float) -> ase.Atoms:
    atoms = ethanol_atoms(world)
    atoms.positions[0] += [distance, 0.0, 0.0]
    return atoms


def dense_cluster(world: World, n_side: int = 4, spacing: float = 2.6) -> ase.Atoms:
    """n_side^3 ethanol molecules on a grid closer than molecules can be (~500 atoms)."""
    molecule = ethanol_atoms(world)
    molecule.positions -= molecule.positions.mean(axis=0)
    cluster = ase.Atoms()
    for i in range(n_side):
        for j in range(n_side):
            for k in range(n_side):
                copy = molecule.copy()
                copy.positions += spacing * np.array([i, j, k])
                cluster += copy
    return cluster


def relabelled(world: World, name: str, energy: float = 1.0, forces: float = 1.0,
               polarizability: float = 1.0) -> Path:
    """The data with labels multiplied: labels in other units."""
    frames = ase.io.read(world.data, index=":")
    for atoms in frames:
        results = atoms.calc.results
        atoms.info["energy"] = results.pop("energy") * energy
        atoms.arrays["forces"] = results.pop("forces") * forces
        atoms.info["polarizability"] = np.asarray(atoms.info["polarizability"]) * polarizability
        atoms.calc = None
    return write_structure(world, name, frames)


def unlabelled(world: World, name: str) -> Path:
    return write_structure(world, name, [ethanol_atoms(world, k) for k in range(8)])


def text_file(world: World, name: str, text: str | bytes) -> Path:
    path = world.path(name)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def frame_text(world: World, index: int = 0) -> list[str]:
    """The lines of one frame of the data file."""
    lines = world.data.read_text().splitlines()
    return lines[index * 11:(index + 1) * 11]


def edited_frame(world: World, name: str, edit) -> Path:
    """One frame of the data with ``edit(lines)`` applied."""
    lines = frame_text(world)
    edit(lines)
    return text_file(world, name, "\n".join(lines) + "\n")


def violent_model(world: World) -> Path:
    """The model with its direct forces a million times too strong: MD blows up."""
    model = load_model(world.model)
    model.heads["forces"].scale.mul_(1e6)
    path = world.path("violent_model.pt")
    save_model(model, path, metadata=model.metadata)
    return path


def nan_model(world: World) -> Path:
    model = load_model(world.model)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    path = world.path("nan_model.pt")
    save_model(model, path, metadata=model.metadata)
    return path


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def evil_model(world: World) -> Path:
    path = world.path("evil.pt")
    torch.save({"format": "tridft-model", "payload": Evil()}, path)
    return path


def nan_trajectory(world: World) -> Path:
    frames = []
    for step in range(12):
        atoms = ethanol_atoms(world)
        alpha = np.eye(3) * 4.0 + 0.01 * np.sin(step)
        if step == 7:
            alpha[0, 0] = np.nan
        atoms.info.update(time_fs=step * 1.0, polarizability=alpha.ravel(),
                          temperature_K=300.0, energy=-100.0)
        frames.append(atoms)
    return write_structure(world, "nan_traj.extxyz", frames)
