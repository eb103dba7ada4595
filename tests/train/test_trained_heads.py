"""End to end on tiny models: every label of the file is trained, only trained heads are
evaluated, and energies of compositions the reference energies do not determine are
refused (or predicted from isolated-atom energies)."""

from __future__ import annotations

import ase
import ase.build
import ase.io
import numpy as np
import pytest

from tridft.cli.main import main
from tridft.data.io import read_structures
from tridft.errors import InputError
from tridft.model.persistence import load_model
from tridft.train.evaluate import evaluate, predict
from tridft.train.loop import train

from .tiny import tiny_config, write_ethanol_subset

ISOLATED_ATOMS = {"H": -13.6, "C": -1029.0, "O": -2041.0}  # eV, made up: only their use counts


@pytest.fixture(scope="module")
def ethanol(tmp_path_factory):
    return write_ethanol_subset(tmp_path_factory.mktemp("data") / "ethanol.extxyz", 16)


@pytest.fixture(scope="module")
def methanol(tmp_path_factory):
    atoms = ase.build.molecule("CH3OH")
    atoms.info["energy"] = -3140.0
    path = tmp_path_factory.mktemp("data") / "methanol.extxyz"
    ase.io.write(path, [atoms], format="extxyz")
    return path


def one_line_error(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_polarizabilities_and_dipoles_alone_train_and_report_only_those(tmp_path, ethanol,
                                                                        capsys):
    # Energies and forces switched off: the file then looks like the QM7b set.
    config = tiny_config(tmp_path / "run", ethanol, training={"max_steps": 4},
                         data={"keys": {"energy": None, "forces": None}})
    result = train(config, progress=False)
    assert result.tasks == {"polarizability": 2.0, "dipole": 1.0}
    model = load_model(result.best_model_path)
    assert sorted(model.heads) == ["dipole", "polarizability"]
    assert model.metadata["tasks"]["not_trained"] == [
        task for task in config.loss.weights if task != "polarizability"]
    assert set(result.metrics) == {"n_structures", "n_atoms", "polarizability_mae",
                                   "polarizability_rmse", "polarizability_iso_mae",
                                   "dipole_mae", "dipole_rmse"}
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert not [c for c in header if "energy" in c or "forces" in c or "jacobian" in c]
    # The file's energies and forces are there, but the model has no head for them.
    assert main(["evaluate", str(result.best_model_path), str(ethanol)]) == 0
    out = capsys.readouterr().out
    assert "polarizability MAE" in out and "dipole MAE" in out
    assert "energy" not in out and "force" not in out and "dE/dR" not in out


def test_equilibrated_dipole_charges_are_trained_and_saved(tmp_path, ethanol):
    """model.dipole_charges reaches the dipole head, and the saved model rebuilds it."""
    config = tiny_config(tmp_path / "run", ethanol, training={"max_steps": 4},
                         model={"dipole_charges": "equilibrated"},
                         data={"keys": {"energy": None, "forces": None}})
    result = train(config, progress=False)
    model = load_model(result.best_model_path)
    assert model.heads["dipole"].charges == "equilibrated"
    assert np.isfinite(result.metrics["dipole_mae"])
    records = read_structures(ethanol)[:3]
    first = predict(model, records, energy=False)
    again = predict(load_model(result.best_model_path), records, energy=False)
    assert all(np.array_equal(a["dipole"], b["dipole"]) for a, b in zip(first, again))
    assert float(np.abs(first[0]["dipole"]).max()) > 0


def test_a_further_label_gets_its_head(tmp_path):
    path = write_ethanol_subset(tmp_path / "ethanol.extxyz", 12)
    frames = ase.io.read(path, index=":")
    for k, atoms in enumerate(frames):
        atoms.info["gap"] = 5.0 + 0.1 * k
    ase.io.write(path, frames, format="extxyz")
    config = tiny_config(tmp_path / "run", path, training={"max_steps": 2},
                         data={"keys": {"extra.gap": "gap"},
                               "kinds": {"gap": "structure_scalar_mean"},
                               "split": {"validation": 4, "test": 0, "seed": 0}})
    result = train(config, progress=False)
    assert "gap" in result.tasks and "gap_mae" in result.metrics
    assert load_model(result.best_model_path).heads["gap"].spec()["extensive"] is False


def test_one_formula_refuses_other_formulas_energies(tmp_path, ethanol, methanol, capsys):
    result = train(tiny_config(tmp_path / "run", ethanol, training={"max_steps": 2}),
                   progress=False)
    model = load_model(result.best_model_path)
    records = read_structures(methanol)
    with pytest.raises(InputError, match=r"methanol\.extxyz:0: cannot predict the energy of "
                                         r"CH4O.*\(C2H6O\)"):
        evaluate(model, records)
    with pytest.raises(InputError, match="CH4O"):
        predict(model, records)
    (other,) = predict(model, records, energy=False)  # the rest is still predicted
    assert "energy" not in other and other["polarizability"].shape == (3, 3)
    assert other["forces"].shape == (6, 3)
    assert "CH4O" in one_line_error(capsys, "evaluate", result.best_model_path, methanol)
    assert main(["evaluate", str(result.best_model_path), str(methanol),
                 "--keys", "energy=none"]) == 0
    # Its own formula, twice in one structure, is still predicted.
    one = ase.io.read(ethanol, index="0")
    one = ase.Atoms(numbers=one.numbers, positions=one.positions)
    far = one.copy()
    far.translate([20.0, 0, 0])
    (pair,) = predict(model, read_structures(one + far))
    (single,) = predict(model, read_structures(one))
    assert pair["energy"] == pytest.approx(2 * single["energy"], rel=1e-9)


def test_isolated_atom_energies_predict_other_formulas(tmp_path, ethanol, methanol):
    config = tiny_config(tmp_path / "run", ethanol, training={"max_steps": 2},
                         data={"reference_energies": ISOLATED_ATOMS})
    model = load_model(train(config, progress=False).best_model_path)
    (result,) = predict(model, read_structures(methanol))
    atoms = sum(ISOLATED_ATOMS[s] for s in ("C", "O", "H", "H", "H", "H"))
    # Isolated atoms plus a learned atomisation energy of a few eV per atom.
    assert np.isfinite(result["energy"]) and abs(result["energy"] - atoms) < 6 * 10.0
    assert "energy_mae" in evaluate(model, read_structures(methanol))
