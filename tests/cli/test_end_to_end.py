"""The command line from end to end: `tridft demo --quick` trains a small model on 40
bundled structures and reports on its test split; evaluate, predict and info then work
on what it wrote, and bad input through each command is one line, not a traceback."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from contextlib import redirect_stdout

import ase.io
import numpy as np
import pytest
import torch

from tridft.cli.main import main
from tridft.model.persistence import load_model

REQUIRED_METRICS = ("n_structures", "energy_mae", "energy_mae_per_atom", "forces_mae",
                    "forces_rmse", "polarizability_mae", "polarizability_iso_mae",
                    "jacobian_consistency_mae")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(run folder, what `tridft demo --quick` printed)."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = main(["demo", "--quick", "--out", str(run_dir)])
    assert code == 0, printed.getvalue()
    return run_dir, printed.getvalue()


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_writes_model_report_and_plots(demo_run):
    run_dir, printed = demo_run
    for name in ("model.pt", "metrics.json", "report.md", "test.extxyz", "split.json"):
        assert (run_dir / name).is_file(), name
    plots = {p.name for p in (run_dir / "plots").iterdir()}
    assert plots == {"parity.png", "errors.png", "learning_curves.png",
                     "gradient_cosines.png"}
    report = (run_dir / "report.md").read_text()
    assert all(f"(plots/{name})" in report for name in plots)

    # The report is on the test split of split.json, which test.extxyz holds.
    test_indices = json.loads((run_dir / "split.json").read_text())["test"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n_structures"] == len(test_indices) == len(ase.io.read(
        run_dir / "test.extxyz", index=":"))
    # The user is told what to run next, with the real paths.
    assert f"tridft evaluate {run_dir / 'model.pt'} {run_dir / 'test.extxyz'}" in printed


def test_evaluate_reproduces_the_demo_metrics(demo_run, capsys, tmp_path):
    run_dir, _ = demo_run
    out = tmp_path / "metrics.json"
    code, printed, _ = run_cli(capsys, "evaluate", str(run_dir / "model.pt"),
                               str(run_dir / "test.extxyz"), "--json", str(out))
    assert code == 0
    assert "energy MAE" in printed and "eV/A" in printed
    metrics = json.loads(out.read_text())
    for key in REQUIRED_METRICS:
        assert math.isfinite(metrics[key]), key
    demo_metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in REQUIRED_METRICS:
        assert metrics[key] == pytest.approx(demo_metrics[key], rel=1e-6), key


def test_predict_writes_readable_extxyz(demo_run, capsys, tmp_path):
    run_dir, _ = demo_run
    out = tmp_path / "predictions.extxyz"
    code, _, _ = run_cli(capsys, "predict", str(run_dir / "model.pt"),
                         str(run_dir / "test.extxyz"), "-o", str(out), "--forces",
                         "conservative")
    assert code == 0
    inputs = ase.io.read(run_dir / "test.extxyz", index=":")
    frames = ase.io.read(out, index=":")
    assert len(frames) == len(inputs)
    for given, predicted in zip(inputs, frames):
        np.testing.assert_allclose(predicted.positions, given.positions)
        energy = predicted.get_potential_energy()  # ASE moves energy/forces to a calculator
        forces = predicted.get_forces()
        assert np.isfinite(energy) and forces.shape == (len(given), 3)
        polarizability = np.asarray(predicted.info["polarizability"]).reshape(3, 3)
        np.testing.assert_allclose(polarizability, polarizability.T, atol=1e-6)
        # Predictions, not the labels of the input file.
        assert energy != pytest.approx(given.get_potential_energy(), abs=1e-9)
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]  # no temporary left

    # Read back as labels, the predictions are what the model predicts: zero error
    # (up to float32 and the file's decimals).
    scores = tmp_path / "self.json"
    code, _, _ = run_cli(capsys, "evaluate", str(run_dir / "model.pt"), str(out),
                         "--forces", "conservative", "--json", str(scores))
    assert code == 0
    scores = json.loads(scores.read_text())
    assert scores["energy_mae"] < 1e-3
    assert scores["forces_mae"] < 1e-5
    assert scores["polarizability_mae"] < 1e-5


def test_info_shows_architecture_and_parameter_count(demo_run, capsys):
    run_dir, _ = demo_run
    code, printed, _ = run_cli(capsys, "info", str(run_dir / "model.pt"))
    assert code == 0
    model = load_model(run_dir / "model.pt")
    total = sum(p.numel() for p in model.parameters())
    assert f"{total:,}" in printed
    assert "polarizability, per structure" in printed
    assert re.search(rf"elements\s+H, C, O\n", printed)
    # The core repulsion starts at the shortest training C-H distance (about 1 Angstrom).
    ch = float(re.search(r"core repulsion below\s+.*H-C ([\d.]+)", printed).group(1))
    assert 0.9 < ch < 1.1
    assert re.search(rf"\n  features\s+{model.config.features}\n", printed)
    split = json.loads((run_dir / "split.json").read_text())
    counts = [len(split[name]) for name in ("train", "validation", "test")]
    assert re.search(r"split\s+{} train, {} validation, {} test".format(*counts), printed)


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "{run}/missing.pt", "{run}/test.extxyz"], "no such file"),
    (["predict", "{run}/model.pt", "{bad}", "-o", "{tmp}/p.extxyz"], "bad.xyz"),
    (["info", "{pickled}"], "refused to load"),
    (["demo", "--quick", "--out", "{run}/model.pt"], "not a folder"),
])
def test_bad_input_is_one_line(demo_run, capsys, tmp_path, argv, expected):
    run_dir, _ = demo_run
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nno properties\nC 0 0 0\n")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": _Unsafe()}, pickled)
    argv = [a.format(run=run_dir, bad=bad, tmp=tmp_path, pickled=pickled) for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert "Traceback" not in out + err


def test_bad_input_through_the_installed_command(demo_run, tmp_path):
    """The real process: exit status 1 and one line on stderr."""
    run_dir, _ = demo_run
    result = subprocess.run([sys.executable, "-m", "tridft.cli.main", "evaluate",
                             str(run_dir / "model.pt"), str(tmp_path / "nothing.xyz")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"tridft evaluate: error: {tmp_path / 'nothing.xyz'}: no such file"]


class _Unsafe:
    """A Python object: a file that pickles one must not be loaded."""
