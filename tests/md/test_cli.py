"""tridft md and tridft spectrum, end to end, in-process."""

import ase.io
import numpy as np
import pytest

from tridft.cli.main import main
from tridft.md.trajectory import TrajectoryWriter, read_trajectory, series
from tridft.model.persistence import save_model
from tridft.units import INVERSE_FS_TO_CM1
from tests.md.helpers import ethanol_atoms, perturbed_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    model = perturbed_model(seed=6)
    model.elements = [1, 6, 8]
    save_model(model, path)
    return path


def test_md_writes_a_trajectory_and_a_summary(model_file, tmp_path, capsys):
    structure = tmp_path / "ethanol.xyz"
    ase.io.write(structure, ethanol_atoms())
    trajectory = tmp_path / "md.extxyz"
    code = main(["md", str(model_file), str(structure), "--ensemble", "nve", "--steps", "20",
                 "--timestep", "0.25", "--interval", "5", "--forces", "conservative",
                 "--no-progress", "-o", str(trajectory)])
    assert code == 0
    out = capsys.readouterr().out
    assert "total-energy drift" in out and "steps/s" in out and "mean temperature" in out
    frames = read_trajectory(trajectory)
    np.testing.assert_allclose(series(frames, "time_fs"), [0.0, 1.25, 2.5, 3.75, 5.0])
    assert series(frames, "polarizability", (3, 3)).shape == (5, 3, 3)
    assert series(frames, "temperature_K")[0] == pytest.approx(300.0, rel=1e-6)


def test_md_with_bond_springs_writes_every_correction(model_file, tmp_path, capsys):
    structure = tmp_path / "ethanol.xyz"
    ase.io.write(structure, ethanol_atoms())
    trajectory = tmp_path / "md.extxyz"
    code = main(["md", str(model_file), str(structure), "--ensemble", "nve", "--steps", "12",
                 "--forces", "mts", "--no-progress", "-o", str(trajectory)])
    assert code == 0
    assert "valence springs between corrections to -dE/dR every 3 steps" in capsys.readouterr().out
    frames = read_trajectory(trajectory)
    np.testing.assert_allclose(series(frames, "time_fs"), [0.0, 1.5, 3.0, 4.5, 6.0])
    assert series(frames, "polarizability", (3, 3)).shape == (5, 3, 3)
    # A writing interval between the model's evaluations is refused, naming the fix.
    code = main(["md", str(model_file), str(structure), "--steps", "12", "--forces", "mts",
                 "--interval", "2", "--no-progress", "-o", str(tmp_path / "other.extxyz")])
    assert code != 0
    assert "multiple" in capsys.readouterr().err


def test_md_refuses_an_element_the_model_does_not_know(model_file, tmp_path, capsys):
    structure = tmp_path / "ammonia.xyz"
    ase.io.write(structure, ase.Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0],
                                                        [0, 0, 1]]))
    code = main(["md", str(model_file), str(structure), "--steps", "5", "--no-progress",
                 "-o", str(tmp_path / "md.extxyz")])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "element N (Z=7) is unknown to the model" in error


def test_spectrum_finds_the_lines_of_a_synthetic_trajectory(tmp_path, capsys):
    trajectory = tmp_path / "fake.extxyz"
    lines_cm1 = (1050.0, 2950.0)
    with TrajectoryWriter(trajectory) as writer:
        molecule = ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
        for step in range(2000):
            t = step * 1.0  # fs
            wave = [np.cos(2 * np.pi * nu / INVERSE_FS_TO_CM1 * t + k)
                    for k, nu in enumerate(lines_cm1)]
            alpha = np.diag([5.0, 4.0, 3.5]) + 0.1 * wave[0] * np.eye(3)
            alpha[0, 1] = alpha[1, 0] = 0.05 * wave[1]
            writer.write(molecule, info={"time_fs": t, "polarizability": alpha.ravel(),
                                                "dipole": [0.01 * wave[1], 0.0, 0.0],
                                                "temperature_K": 300.0})
    code = main(["spectrum", str(trajectory), "-o", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    raman_line = next(line for line in out.splitlines() if line.startswith("Raman peaks"))
    peaks = [float(p) for p in raman_line.split(":")[1].split(",")]
    resolution = INVERSE_FS_TO_CM1 / 1000.0  # correlation length: half of 2000 fs
    np.testing.assert_allclose(peaks, lines_cm1, atol=resolution / 2)
    assert "IR peaks" in out and "quantum-corrected at 300 K" in out
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "frequency_cm1,raman_iso,raman_aniso,raman_total,ir"
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrum_of_a_missing_trajectory_is_one_line(tmp_path, capsys):
    assert main(["spectrum", str(tmp_path / "nothing.extxyz")]) == 1
    assert "no such file" in capsys.readouterr().err
