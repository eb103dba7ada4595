"""benchmarks/consistency.py and distil_direct_head.py on a `tridft demo --quick` run: the
disagreement they measure on the test split is the one `tridft train` reported for the same
model and structures."""

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tridft.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "consistency.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("quick") / "run"
    with redirect_stdout(io.StringIO()):
        assert main(["demo", "--quick", "--out", str(run)]) == 0
    return run


def test_consistency_on_and_off_the_training_set(run, tmp_path):
    out = tmp_path / "consistency.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), str(run), "--frames", "6", "--sigmas", "0.02,0.1",
         "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(out.read_text())

    reported = json.loads((run / "metrics.json").read_text())  # the run's test split
    test = results["test"]
    assert test["structures"] == reported["n_structures"]
    assert test["disagreement"] == pytest.approx(
        1000 * reported["jacobian_consistency_mae"], rel=1e-4)
    assert test["direct_mae"] == pytest.approx(1000 * reported["forces_mae"], rel=1e-4)

    assert results["train"]["structures"] == 6
    displaced = results["displaced_train"]
    assert [r["sigma_angstrom"] for r in displaced] == [0.02, 0.1]
    assert all(r["disagreement"] > 0 and "direct_mae" not in r for r in displaced)
    # Displacing the atoms changes what the heads see: the numbers differ from undisplaced.
    assert displaced[1]["disagreement"] != results["train"]["disagreement"]


def test_distillation_starts_from_the_trained_heads_and_records_its_progress(run, tmp_path):
    out = tmp_path / "distil.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "distil_direct_head.py"), str(run),
         "--minutes", "0.02", "--sigma", "0.02", "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    history = json.loads(out.read_text())["history"]
    reported = json.loads((run / "metrics.json").read_text())
    first, last = history[0], history[-1]
    # Before any step the student is the trained model: its disagreement with the teacher
    # is the run's own |F_direct + dE/dR| on the test split.
    assert first["step"] == 0 and last["step"] > 0
    assert first["student_vs_teacher"] == pytest.approx(
        1000 * reported["jacobian_consistency_mae"], rel=1e-4)
    # The teacher is never trained: its error stays put while the student's moves.
    assert last["teacher_mae"] == pytest.approx(first["teacher_mae"], rel=1e-6)
    assert last["student_mae"] != first["student_mae"]


def test_generalisation_gap_reproduces_the_runs_test_metrics(run, tmp_path):
    out = tmp_path / "gap.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "generalisation_gap.py"), str(run),
         "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text())["runs"][0]
    reported = json.loads((run / "metrics.json").read_text())  # the run's test split
    test = result["test"]
    # Ethanol structures are all 9 atoms: the mean of per-structure means is the MAE.
    assert test["direct_forces"] == pytest.approx(1000 * reported["forces_mae"], rel=1e-4)
    assert test["conservative_forces"] == pytest.approx(
        1000 * reported["conservative_forces_mae"], rel=1e-4)
    assert test["energy"] == pytest.approx(1000 * reported["energy_mae"], rel=1e-4)
    assert test["polarizability"] == pytest.approx(1000 * reported["polarizability_mae"],
                                                   rel=1e-4)
    assert set(result) >= {"train", "validation", "test", "test_spread"}
    spread = result["test_spread"]
    assert sorted(spread["conservative_forces_percentiles_10_50_90_99"]) \
        == spread["conservative_forces_percentiles_10_50_90_99"]
    assert -1 <= spread["correlation_with_energy_above_lowest"] <= 1
