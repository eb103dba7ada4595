"""``tridft finetune`` and ``tridft inspect`` end to end on a few bundled structures."""

from __future__ import annotations

import ase.io
import pytest
import torch

from tests.physics.helpers import ETHANOL_FILE
from tests.transfer.helpers import ORIGINAL_HEADS, batch_of, ethanol_records, tiny_model
from tridft.cli.main import main
from tridft.model.persistence import load_model, save_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny model file and 20 ethanol structures whose only label is a dipole under 'mu'."""
    folder = tmp_path_factory.mktemp("cli")
    model_path = folder / "tiny.pt"
    save_model(tiny_model(seed=9), model_path)
    frames = ase.io.read(ETHANOL_FILE, index=":20")
    for atoms in frames:
        atoms.info["mu"] = atoms.get_dipole_moment()
        atoms.calc = None
        atoms.info.pop("polarizability", None)
    data_path = folder / "dipoles.extxyz"
    ase.io.write(data_path, frames)
    return folder, model_path, data_path


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"tridft {command}: error: ")
    return err[0]


def test_finetune_then_inspect(files, capsys):
    folder, model_path, data_path = files
    output = folder / "with_dipole.pt"
    code = main(["finetune", str(model_path), str(data_path), "--property", "dipole",
                 "--kind", "dipole", "--keys", "dipole=mu", "--steps", "20", "--no-progress",
                 "-o", str(output)])
    assert code == 0
    assert "validation MAE" in capsys.readouterr().out
    before, after = load_model(model_path), load_model(output)
    assert set(after.heads) == set(ORIGINAL_HEADS) | {"dipole"}
    batch = batch_of(after, ethanol_records(3))
    with torch.no_grad():
        old, new = before(batch), after(batch)
    for key in ORIGINAL_HEADS:
        assert torch.equal(old[key], new[key])

    prefix = folder / "inspect" / "eth"
    assert main(["inspect", str(output), str(data_path), "--structure", "4", "-o",
                 str(prefix)]) == 0
    out = capsys.readouterr().out
    assert "channel" in out and "dipole" in out
    atoms = ase.io.read(f"{prefix}_atoms.extxyz")
    assert "atomic_energy" in atoms.arrays and "dipole_charge" in atoms.arrays
    assert (folder / "inspect" / "eth.png").is_file()


@pytest.mark.parametrize("arguments,message", [
    (["--property", "dipole", "--kind", "dipole"], "no structure carries the label 'dipole'"),
    (["--property", "gap", "--kind", "structure_scalar", "--keys", "energy=e"],
     "only the new property 'gap' can be mapped"),
    (["--property", "energy", "--kind", "structure_scalar", "--keys", "energy=mu"],
     "already has a head named 'energy'"),
    (["--property", "mu", "--kind", "dipole", "--n-train", "500"], "more labelled structures"),
])
def test_finetune_bad_input_is_one_line(files, capsys, arguments, message):
    folder, model_path, data_path = files
    code = main(["finetune", str(model_path), str(data_path), *arguments, "--steps", "2",
                 "--no-progress", "-o", str(folder / "never.pt")])
    assert code == 1
    assert message in one_error_line(capsys, "finetune")
    assert not (folder / "never.pt").exists()


def test_missing_files_are_one_line(files, capsys, tmp_path):
    folder, model_path, data_path = files
    assert main(["inspect", str(tmp_path / "none.pt"), str(data_path)]) == 1
    assert "none.pt" in one_error_line(capsys, "inspect")
    assert main(["inspect", str(model_path), str(data_path), "--structure", "20"]) == 1
    assert "outside 0..19" in one_error_line(capsys, "inspect")
    assert main(["finetune", str(model_path), str(tmp_path / "none.xyz"), "--property", "mu",
                 "--kind", "dipole", "-o", str(tmp_path / "x.pt")]) == 1
    assert "no such file" in one_error_line(capsys, "finetune")
