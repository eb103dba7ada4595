"""NPT dynamics: Berendsen and MTK barostats run with the model's stress, and refuse molecules."""

import numpy as np
import pytest

from tests.md.helpers import ethanol_atoms, perturbed_model
from tests.physics.helpers import water_box_atoms
from tridft.errors import InputError
from tridft.md.calculator import TriDFTCalculator
from tridft.md.dynamics import MDSettings, run_md
from tridft.md.npt import Barostat, pressure_bar
from tridft.md.trajectory import read_trajectory


@pytest.fixture(scope="module")
def model():
    return perturbed_model(seed=8, dtype="float32")


@pytest.mark.parametrize("kind, forces", [("berendsen", "direct"), ("mtk", "conservative")])
def test_npt_moves_the_volume_and_writes_the_pressure(model, tmp_path, kind, forces):
    atoms = water_box_atoms()
    volume = atoms.get_volume()
    atoms.calc = TriDFTCalculator(model, forces=forces)
    settings = MDSettings(ensemble="npt", steps=12, timestep_fs=0.5, interval=4,
                          temperature_K=300,
                          barostat=Barostat(pressure_bar=1.0, kind=kind, coupling_fs=50.0))
    summary = run_md(atoms, settings, tmp_path / "npt.extxyz")
    assert atoms.get_volume() != pytest.approx(volume, rel=1e-6)
    assert summary.mean_pressure_bar is not None and np.isfinite(summary.mean_pressure_bar)
    assert any("mean pressure" in line for line in summary.lines())
    frames = read_trajectory(tmp_path / "npt.extxyz")
    assert len(frames) == 4
    last = frames[-1]
    assert last.info["volume_A3"] == pytest.approx(last.get_volume())
    assert np.isfinite(last.info["pressure_bar"])
    assert (len(atoms.constraints) == 0) == (kind == "mtk")  # MTK allows no FixCom


def test_the_pressure_includes_the_ideal_gas_term(model):
    atoms = water_box_atoms()
    atoms.calc = TriDFTCalculator(model)
    at_rest = pressure_bar(atoms)
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(atoms.get_masses())[:, None])
    moving = pressure_bar(atoms)
    from ase import units

    ideal = 2 * atoms.get_kinetic_energy() / (3 * atoms.get_volume()) / units.bar
    assert moving - at_rest == pytest.approx(ideal, rel=1e-6)


def test_npt_refuses_a_molecule(model, tmp_path):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model)
    with pytest.raises(InputError, match="periodic in all three directions"):
        run_md(atoms, MDSettings(ensemble="npt", steps=2), tmp_path / "x.extxyz")


def test_bad_barostats_are_clear_errors():
    with pytest.raises(InputError, match="barostat must be one of"):
        Barostat(kind="parrinello")
    with pytest.raises(InputError, match="must be > 0"):
        Barostat(coupling_fs=0)


def test_the_md_command_runs_npt_and_stops_on_uncertainty(tmp_path, capsys):
    import ase.io

    from tests.physics.helpers import ETHANOL_FILE
    from tridft.cli.main import main
    from tridft.data.io import read_structures
    from tridft.model.persistence import save_model
    from tridft.uncertainty.calibrate import fit_uncertainty

    model = perturbed_model(seed=9)
    records = read_structures(ETHANOL_FILE)[:30]
    model.uncertainty = fit_uncertainty(model, records[:20], records[20:])
    path = tmp_path / "model.pt"
    save_model(model, path)
    box = tmp_path / "box.extxyz"
    ase.io.write(box, water_box_atoms())
    out = tmp_path / "npt.extxyz"
    assert main(["md", str(path), str(box), "-o", str(out), "--ensemble", "npt", "--steps", "4",
                 "--interval", "2", "--pressure", "100", "--barostat-time", "100",
                 "--uncertainty", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "mean pressure" in printed
    frames = read_trajectory(out)
    assert "pressure_bar" in frames[-1].info and "energy_uncertainty" in frames[-1].info
    assert frames[-1].arrays["forces_uncertainty"].shape == (len(frames[-1]),)

    squeezed = ethanol_atoms()
    squeezed.positions = (squeezed.positions - squeezed.positions.mean(0)) * 0.8
    molecule = tmp_path / "squeezed.extxyz"
    ase.io.write(molecule, squeezed)
    code = main(["md", str(path), str(molecule), "-o", str(tmp_path / "s.extxyz"),
                 "--steps", "5", "--uncertainty-limit", "1e-3", "--on-uncertainty", "stop",
                 "--no-progress"])
    error = capsys.readouterr().err.strip()
    assert code == 1 and "outside what the model knows" in error and "\n" not in error
