"""Isolated-atom energies: ground-state spins, the same level of theory as the labels, and a
file that data.reference_energies reads."""

from __future__ import annotations

import pytest

from tridft.data.references import read_reference_energies
from tridft.errors import InputError
from tridft.label.isolated_atoms import (GROUND_STATE_MULTIPLICITY, element_symbols,
                                         isolated_atom_energies, write_reference_energies)
from tridft.label.pyscf_backend import LabelSettings, label_structure
from tridft.train.config import config_from_dict
from tridft.units import HARTREE_EV


def test_hydrogen_atom_and_the_binding_energy_of_h2():
    energies = isolated_atom_energies(["O", 1, "H"], LabelSettings())
    assert list(energies) == ["H", "O"] and GROUND_STATE_MULTIPLICITY["O"] == 3
    # PBE is almost exact for the hydrogen atom (-0.5 Hartree); def2-SVP misses ~1.3 mHa.
    assert energies["H"] / HARTREE_EV == pytest.approx(-0.5, abs=3e-3)
    # With the same settings, H2 at 0.75 A is bound by PBE's ~4.5 eV.
    h2 = label_structure([1, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.75]],
                         LabelSettings(properties=("energy",)))
    assert 2 * energies["H"] - h2["energy"] == pytest.approx(4.5, abs=0.4)


def test_the_file_round_trips_into_the_training_configuration(tmp_path):
    energies = {"H": -13.57028349, "C": -1027.2635986, "O": -2038.5322869}
    path = tmp_path / "atoms.yaml"
    write_reference_energies(energies, LabelSettings(), path)
    assert "PBE/def2-SVP" in path.read_text()
    assert read_reference_energies(path) == energies
    config = config_from_dict({"data": {"reference_energies": str(path)}})
    assert config.data.reference_energies == energies


def test_bad_files_and_elements_are_named(tmp_path):
    with pytest.raises(InputError, match="missing.yaml"):
        read_reference_energies(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("H: -13.6\nC: lots\n")
    with pytest.raises(InputError, match=r"bad.yaml: C: the energy must be a number"):
        read_reference_energies(bad)
    with pytest.raises(InputError, match="Xx"):
        element_symbols(["H", "Xx"])
    with pytest.raises(InputError, match="no ground-state multiplicity tabulated for Rb"):
        isolated_atom_energies(["Rb"], LabelSettings())


def test_the_command_writes_a_file_training_reads(tmp_path, capsys):
    from tridft.cli.main import main

    out = tmp_path / "atoms.yaml"
    assert main(["label", "O,H", "-o", str(out), "--isolated-atoms", "--basis", "sto-3g",
                 "--no-progress"]) == 0
    energies = read_reference_energies(out)
    assert list(energies) == ["H", "O"] and energies["H"] < -12.0
    assert "data.reference_energies=" in capsys.readouterr().out
    assert main(["label", "H,Qq", "-o", str(tmp_path / "x.yaml"), "--isolated-atoms"]) != 0
    assert "'Qq': not an element symbol" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()
