"""tridft calibrate: a model without calibration gets one, saved in place or to -o."""

import ase.io

from tests.physics.helpers import ETHANOL_FILE, perturbed_model
from tridft.cli.main import main
from tridft.model.persistence import load_model, save_model


def test_calibrate_with_files(tmp_path, capsys):
    model_file = tmp_path / "model.pt"
    save_model(perturbed_model(seed=5), model_file, metadata={"note": "kept"})
    frames = ase.io.read(ETHANOL_FILE, index=":30")
    ase.io.write(tmp_path / "train.extxyz", frames[:20])
    ase.io.write(tmp_path / "val.extxyz", frames[20:])
    assert main(["calibrate", str(model_file), "--train", str(tmp_path / "train.extxyz"),
                 "--validation", str(tmp_path / "val.extxyz"), "-o",
                 str(tmp_path / "out.pt")]) == 0
    printed = capsys.readouterr().out
    assert "20 training and 10 validation" in printed and "forces: scale" in printed
    calibrated = load_model(tmp_path / "out.pt")
    assert set(calibrated.uncertainty.heads) == {"energy", "forces", "polarizability"}
    assert calibrated.metadata == {"note": "kept"}
    assert load_model(model_file).uncertainty is None  # the input is untouched
