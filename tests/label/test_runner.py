"""The labelling runner: keys, resume after a kill, failures, Dask workers, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import ase
import ase.io
import numpy as np
import pytest

from tests.label.helpers import FAST, REPO_ROOT, distorted_waters
from tridft.cli.main import main
from tridft.label import jobs, runner
from tridft.label.pyscf_backend import LabelFailure, LabelSettings
from tridft.label.runner import label_file, label_key, prepare_output, scan_frames


def frames_by_index(path) -> dict[int, ase.Atoms]:
    """The frames of ``path`` by source_index; fails if one appears twice."""
    frames = ase.io.read(str(path), index=":")
    indices = [int(atoms.info["source_index"]) for atoms in frames]
    assert len(indices) == len(set(indices)), f"duplicate frames: {sorted(indices)}"
    return dict(zip(indices, frames))


# --- keys -------------------------------------------------------------------------------------


def test_label_key_ignores_noise_below_the_rounding_but_not_settings_or_charge():
    numbers, positions = [8, 1, 1], np.array([[0.0, 0, 0], [0, 0.75, -0.5], [0, -0.75, -0.5]])
    key = label_key(numbers, positions, 0, 1, FAST)
    assert key == label_key(numbers, positions + 1e-9, 0, 1, FAST)
    assert key == label_key(numbers, positions * -1.0 * -1.0, 0, 1, FAST)  # -0.0 is 0.0
    assert key == label_key(numbers, positions, 0, 1, LabelSettings(basis="sto-3g", threads=2))
    assert key != label_key(numbers, positions + 1e-4, 0, 1, FAST)
    assert key != label_key(numbers, positions, 1, 2, FAST)
    assert key != label_key(numbers, positions, 0, 1, LabelSettings(basis="def2-SVP"))
    assert key != label_key(numbers, positions, 0, 1,
                            LabelSettings(basis="sto-3g", properties=("energy",)))


# --- the output file --------------------------------------------------------------------------


def _fake_frame(index: int) -> str:
    key = f"{index:064x}"
    return (f"2\nProperties=species:S:1:pos:R:3 energy=-1.0 label_key={key} "
            f"source_index={index} pbc=\"F F F\"\nH 0 0 0\nH 0 0 0.74\n")


@pytest.mark.parametrize("cut", [1, 5, 30, 70])
def test_a_truncated_last_frame_is_dropped(tmp_path, cut):
    path = tmp_path / "out.extxyz"
    complete = _fake_frame(0) + _fake_frame(1)
    partial = _fake_frame(2)[:cut]
    path.write_text(complete + partial)
    assert scan_frames(path)[0] == len(complete.encode())
    keys = prepare_output(path)
    assert path.read_text() == complete
    assert keys == {f"{0:064x}", f"{1:064x}"}
    assert len(ase.io.read(str(path), index=":")) == 2


def test_a_complete_file_is_left_alone(tmp_path):
    path = tmp_path / "out.extxyz"
    text = _fake_frame(0) + _fake_frame(1)
    path.write_text(text)
    assert len(prepare_output(path)) == 2 and path.read_text() == text
    assert prepare_output(tmp_path / "missing.extxyz") == set()


# --- whole runs (in this process: workers=0) --------------------------------------------------


def test_resume_after_a_kill_labels_each_structure_exactly_once(tmp_path):
    waters = distorted_waters(4)
    out = tmp_path / "labelled.extxyz"
    # A run killed after two structures, in the middle of writing the third.
    first = label_file(waters[:2], out, FAST, workers=0, progress=False)
    assert first.done == 2
    text = out.read_text()
    third = runner.frame_text(runner.make_jobs(runner.read_input(waters), FAST)[2],
                              {"energy": 0.0, "level_of_theory": "x", "program": "y",
                               "wall_time_s": 0.0})
    out.write_text(text + third[: len(third) // 2])

    second = label_file(waters, out, FAST, workers=0, progress=False)
    assert (second.done, second.skipped, second.failed) == (2, 2, 0)
    frames = frames_by_index(out)
    assert sorted(frames) == [0, 1, 2, 3]

    again = label_file(waters, out, FAST, workers=0, progress=False)
    assert (again.done, again.skipped) == (0, 4)
    assert sorted(frames_by_index(out)) == [0, 1, 2, 3]

    atoms = frames[3]
    assert atoms.info["program"].startswith("pyscf ")
    assert atoms.info["level_of_theory"].startswith("PBE/sto-3g")
    assert atoms.info["polarizability"].shape == (9,)
    assert atoms.get_forces().shape == (3, 3) and atoms.get_dipole_moment().shape == (3,)
    assert np.allclose(atoms.positions, waters[3].positions, atol=1e-7)


def test_a_failure_goes_to_the_failures_file_not_the_output(tmp_path, monkeypatch):
    real = jobs.label_structure

    def flaky(numbers, positions, settings, charge=None, multiplicity=None):
        if positions[0, 0] == waters[1].positions[0, 0]:
            raise LabelFailure("SCF did not converge (test)")
        return real(numbers, positions, settings, charge=charge, multiplicity=multiplicity)

    waters = distorted_waters(3)
    monkeypatch.setattr(jobs, "label_structure", flaky)
    out = tmp_path / "out.extxyz"
    summary = label_file(waters, out, FAST, workers=0, progress=False)
    assert (summary.done, summary.failed) == (2, 1)
    assert sorted(frames_by_index(out)) == [0, 2]
    failures = [json.loads(line) for line in (tmp_path / "out.extxyz.failures.jsonl").open()]
    assert failures == [{"source_index": 1, "label_key": failures[0]["label_key"],
                         "reason": "SCF did not converge (test)"}]

    monkeypatch.setattr(jobs, "label_structure", real)  # the next run retries it
    summary = label_file(waters, out, FAST, workers=0, progress=False)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 0)
    assert sorted(frames_by_index(out)) == [0, 1, 2]


def test_charge_and_multiplicity_come_from_the_structure_info(tmp_path):
    hydroxyl = ase.Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    hydroxide = hydroxyl.copy()
    hydroxyl.info["multiplicity"] = 2
    hydroxide.info["charge"] = -1
    out = tmp_path / "out.extxyz"
    settings = LabelSettings(basis="sto-3g", properties=("energy", "dipole"))
    summary = label_file([hydroxyl, hydroxide], out, settings, workers=0, progress=False)
    assert summary.done == 2
    frames = frames_by_index(out)
    assert (frames[0].info["charge"], frames[0].info["multiplicity"]) == (0, 2)
    assert (frames[1].info["charge"], frames[1].info["multiplicity"]) == (-1, 1)


# --- Dask -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_dask_workers_label_like_one_process(tmp_path):
    waters = distorted_waters(3, seed=1)
    serial, parallel = tmp_path / "serial.extxyz", tmp_path / "parallel.extxyz"
    label_file(waters, serial, FAST, workers=0, progress=False)
    summary = label_file(waters, parallel, FAST, workers=2, progress=False)
    assert (summary.done, summary.failed) == (3, 0)
    a, b = frames_by_index(serial), frames_by_index(parallel)
    assert sorted(a) == sorted(b) == [0, 1, 2]
    for index in a:
        assert a[index].info["label_key"] == b[index].info["label_key"]
        assert abs(a[index].get_potential_energy() - b[index].get_potential_energy()) < 1e-6
        assert np.abs(a[index].get_forces() - b[index].get_forces()).max() < 1e-6
        assert np.abs(a[index].info["polarizability"]
                      - b[index].info["polarizability"]).max() < 1e-6


# --- the command line -------------------------------------------------------------------------


def test_cli_labels_and_summarises(tmp_path, capsys):
    source = tmp_path / "waters.extxyz"
    ase.io.write(str(source), distorted_waters(2))
    out = tmp_path / "out.extxyz"
    args = ["label", str(source), "-o", str(out), "--basis", "sto-3g", "--workers", "0",
            "--properties", "energy,forces", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "labelled  2" in text and "failed    0" in text and "s per structure" in text
    assert main(args) == 0
    assert "skipped   2" in capsys.readouterr().out
    assert "polarizability" not in ase.io.read(str(out), index=0).info


def _bad_inputs(tmp_path):
    periodic = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True)
    radical = ase.Atoms("OH", positions=[[0, 0, 0], [0, 0, 0.97]])
    water = distorted_waters(1)[0]
    cases = {}
    for name, atoms, options, fragment in [
        ("periodic", periodic, [], "structure 0: periodic structure"),
        ("odd", radical, [], "9 electrons cannot have multiplicity 1"),
        ("basis", water, ["--basis", "def2-nonsense"], "unknown basis set 'def2-nonsense'"),
    ]:
        path = tmp_path / f"{name}.extxyz"
        ase.io.write(str(path), atoms)
        cases[name] = (path, options, fragment)
    return cases


@pytest.mark.parametrize("name", ["periodic", "odd", "basis"])
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, name):
    path, options, fragment = _bad_inputs(tmp_path)[name]
    out = tmp_path / "out.extxyz"
    assert main(["label", str(path), "-o", str(out), "--workers", "0", *options]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("tridft label: error: ") and err.count("\n") == 1
    assert fragment in err
    assert not out.exists()


def test_installed_command_exits_non_zero_without_traceback(tmp_path):
    path, options, fragment = _bad_inputs(tmp_path)["basis"]
    result = subprocess.run([sys.executable, "-m", "tridft.cli.main", "label", str(path),
                             "-o", str(tmp_path / "out.extxyz"), *options],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and fragment in result.stderr
