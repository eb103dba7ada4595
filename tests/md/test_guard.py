"""Molecular dynamics that blows up stops with a message, and spectra refuse NaN frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.md.helpers import ethanol_atoms, perturbed_model
from tridft.errors import InputError, TriDFTError
from tridft.md.calculator import TriDFTCalculator
from tridft.md.dynamics import MDSettings, run_md
from tridft.md.guard import BlowUpGuard
from tridft.md.trajectory import read_trajectory, series


@pytest.mark.parametrize("values, message", [
    ((math.nan, 0.1, 300.0), "potential energy became nan"),
    ((-10.0, 0.1, math.inf), "temperature became inf"),
    ((-10.0, 0.1, 1e41), "temperature reached 1e\\+41 K"),
    ((1e31, 0.1, 300.0), "potential energy moved"),
])
def test_the_guard_stops_what_blew_up(values, message):
    guard = BlowUpGuard(300.0, n_atoms=9, path="md.extxyz")
    guard.check(0, -10.0, 0.1, 300.0)
    with pytest.raises(TriDFTError, match=message):
        guard.check(1, *values)


def test_a_run_that_blows_up_stops_and_keeps_only_finite_frames(tmp_path):
    model = perturbed_model(seed=5)
    with torch.no_grad():
        model.heads["forces"].scale.mul_(1e5)  # violent forces
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model, forces="direct")
    with pytest.raises(TriDFTError, match="blown up"):
        run_md(atoms, MDSettings(ensemble="nve", steps=50), tmp_path / "md.extxyz")
    frames = read_trajectory(tmp_path / "md.extxyz")
    assert np.isfinite(series(frames, "temperature_K")).all()


def test_spectra_refuse_non_finite_frames(tmp_path):
    import ase
    import ase.io

    frames = []
    for step in range(10):
        atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
        atoms.info["polarizability"] = np.full(9, np.nan if step == 6 else 1.0)
        frames.append(atoms)
    ase.io.write(tmp_path / "t.extxyz", frames, format="extxyz")
    with pytest.raises(InputError, match="structure 6: field polarizability: NaN"):
        series(read_trajectory(tmp_path / "t.extxyz"), "polarizability", (3, 3),
               path="t.extxyz")
