"""The geometry samplers and ``tridft sample``."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
from ase.build import molecule
from ase.units import kB

from tridft.cli.main import main
from tridft.errors import InputError
from tridft.label import sampling


def test_random_displacements_have_the_documented_width_and_no_clashes():
    ethanol = molecule("CH3CH2OH")
    samples = sampling.random_displacements(ethanol, 400, temperature_k=500, seed=3)
    assert len(samples) == 400
    steps = np.array([s.positions - ethanol.positions for s in samples])  # (400, 9, 3)
    expected = np.sqrt(kB * 500 / np.where(ethanol.numbers == 1, 8.0, 20.0))  # Angstrom
    assert np.allclose(sampling.displacement_sigma(ethanol.numbers, 500), expected)
    # Removing the centre-of-mass shift narrows the heavy atoms' spread, widens the H's a little.
    widths = steps.std(axis=(0, 2))
    assert np.all(widths < 1.1 * expected) and np.all(widths > 0.7 * expected)
    assert not any(sampling.too_close(s.numbers, s.positions) for s in samples)
    masses = ethanol.get_masses()
    assert np.allclose(np.einsum("a,nax->nx", masses, steps), 0, atol=1e-9)  # no drift


def test_random_displacements_are_reproducible_by_seed():
    water = molecule("H2O")
    a = sampling.random_displacements(water, 3, 300, seed=7)
    b = sampling.random_displacements(water, 3, 300, seed=7)
    c = sampling.random_displacements(water, 3, 300, seed=8)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert not np.array_equal(a[0].positions, c[0].positions)


def test_too_close():
    assert sampling.too_close([1, 1], np.array([[0, 0, 0], [0, 0, 0.3]]))
    assert not sampling.too_close([1, 1], np.array([[0, 0, 0], [0, 0, 0.74]]))


def test_load_molecule_by_name_and_bad_names(tmp_path):
    assert sampling.load_molecule("ethanol").get_chemical_formula() == "C2H6O"
    assert sampling.load_molecule("H2O").get_chemical_formula() == "H2O"
    with pytest.raises(InputError, match="neither a file nor a molecule name"):
        sampling.load_molecule("unobtainium")


def test_cli_sample_writes_geometries_ready_to_label(tmp_path, capsys):
    out = tmp_path / "samples.extxyz"
    assert main(["sample", "water", "--n", "5", "--temperature", "300", "--seed", "1",
                 "-o", str(out)]) == 0
    assert "tridft label" in capsys.readouterr().out
    frames = ase.io.read(str(out), index=":")
    assert len(frames) == 5 and frames[0].info["sampler"] == "random_displacements"
    assert main(["sample", "water", "--n", "5", "--temperature", "-1", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "temperature must be positive" in err
