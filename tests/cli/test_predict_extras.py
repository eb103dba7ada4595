"""tridft predict --stress --uncertainty: the documented keys in the extxyz it writes."""

import ase.io
import numpy as np
import pytest

from tests.physics.helpers import ETHANOL_FILE, perturbed_model, water_box_atoms
from tridft.cli.main import main
from tridft.data.io import read_structures
from tridft.model.persistence import save_model
from tridft.uncertainty.calibrate import fit_uncertainty


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    model = perturbed_model(seed=6)
    records = read_structures(ETHANOL_FILE)[:30]
    model.uncertainty = fit_uncertainty(model, records[:20], records[20:])
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(model, path)
    return path


def test_predict_writes_stress_and_uncertainties(model_file, tmp_path):
    molecules = ase.io.read(ETHANOL_FILE, index=":2")
    data = tmp_path / "mixed.extxyz"
    ase.io.write(data, molecules + [water_box_atoms()])
    out = tmp_path / "out.extxyz"
    assert main(["predict", str(model_file), str(data), "-o", str(out), "--stress",
                 "--uncertainty", "--forces", "direct"]) == 0
    frames = ase.io.read(out, index=":")
    assert len(frames) == 3
    for frame in frames:
        for key in ("energy_uncertainty", "forces_uncertainty_max",
                    "polarizability_uncertainty"):
            assert float(frame.info[key]) > 0
        assert frame.arrays["forces_uncertainty"].shape == (len(frame),)
        assert np.isclose(frame.arrays["forces_uncertainty"].max(),
                          frame.info["forces_uncertainty_max"])
    water = frames[2]
    # ASE's extxyz reader hands a "stress" key to a calculator of the frame.
    stress = water.get_stress(voigt=False) if water.calc is not None and \
        "stress" in water.calc.results else np.reshape(water.info["stress"], (3, 3))
    assert np.abs(stress).max() > 0 and np.allclose(stress, stress.T)
    for molecule in frames[:2]:  # no volume, no stress
        assert "stress" not in molecule.info and (
            molecule.calc is None or "stress" not in molecule.calc.results)


def test_predict_uncertainty_of_an_uncalibrated_model_is_one_line(tmp_path, capsys):
    path = tmp_path / "plain.pt"
    save_model(perturbed_model(seed=1), path)
    data = tmp_path / "one.extxyz"
    ase.io.write(data, ase.io.read(ETHANOL_FILE, index="0"))
    assert main(["predict", str(path), str(data), "-o", str(tmp_path / "o.extxyz"),
                 "--uncertainty"]) == 1
    error = capsys.readouterr().err.strip()
    assert "no uncertainty calibration" in error and "\n" not in error
