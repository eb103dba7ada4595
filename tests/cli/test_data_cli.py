"""``tridft data``: a summary for good files, one error line (no traceback) for bad ones."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.data.files import BAD_INPUTS, REPO_ROOT, shared_file, write_bad
from tridft.cli.main import main


def test_default_dataset_summary(capsys):
    assert main(["data"]) == 0
    out = capsys.readouterr().out
    assert "ethanol_pbe_def2svp_800.extxyz" in out
    assert "800 (molecules, no cell)" in out
    assert "H 4800, C 1600, O 800" in out
    for label in ("energy", "forces (components)", "polarizability (trace/3)", "dipole |mu|"):
        assert label in out
    assert "800/800" in out


def test_water_monomers_with_keys_and_units(capsys):
    path = shared_file("water_monomer_alpha_au.xyz")
    code = main(["data", str(path), "--keys", "energy=potential,polarizability=alpha,dipole=mu",
                 "--units", "energy=Hartree,polarizability=bohr^3,dipole=e*bohr"])
    assert code == 0
    out = capsys.readouterr().out
    assert "1000 (molecules, no cell)" in out
    assert "0/1000" in out  # no forces in this file
    # Isotropic polarizability around 10 bohr^3 = 1.5 Angstrom^3.
    row = next(line for line in out.splitlines() if "polarizability (trace/3)" in line)
    assert 1.3 < float(row.split()[4]) < 1.7


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_file_gives_one_error_line(tmp_path, capsys, name):
    path = write_bad(tmp_path, name)
    assert main(["data", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("tridft data: error: ") and err.count("\n") == 1
    assert str(path) in err and BAD_INPUTS[name].fragment in err


@pytest.mark.parametrize("args, words", [
    (["--units", "energy=Hartre"], ["--units", "Hartre"]),
    (["--keys", "enrgy=potential"], ["--keys", "enrgy"]),
    (["missing.extxyz"], ["missing.extxyz", "no such file"]),
])
def test_bad_options_and_paths(capsys, args, words):
    assert main(["data", *args]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(word in err for word in words)


def test_installed_command_exits_non_zero_without_traceback(tmp_path):
    path = write_bad(tmp_path, "unknown_symbol")
    result = subprocess.run([sys.executable, "-m", "tridft.cli.main", "data", str(path)],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "structure 1: field species: unknown element symbol 'Xx'" in result.stderr
