"""benchmarks/uncertainty.py and benchmarks/npt_water.py in --quick mode: they run end to
end and write the documented JSON keys."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import npt_water  # noqa: E402
import uncertainty  # noqa: E402


def test_uncertainty_quick(tmp_path):
    out = tmp_path / "uncertainty.json"
    assert uncertainty.main(["--quick", "--out", str(out), "--workdir", str(tmp_path)]) == 0
    results = json.loads(out.read_text())
    run = results["runs"][0]
    assert set(run["spearman"]) == {"forces_per_structure", "forces_max_atom_vs_rmse",
                                    "energy", "polarizability"}
    assert set(run["calibration"]) == {"energy", "forces", "polarizability"}
    assert run["flagging"]["ethanol_scaled_0.8"]["above_every_thermal_frame"]
    assert run["cost_cpu"]["single_uncertainty_ms_per_structure"] > 0


@pytest.mark.skipif(not npt_water.WATER.is_file(), reason="the shared water data is absent")
def test_npt_water_quick(tmp_path):
    out = tmp_path / "npt.json"
    assert npt_water.main(["--quick", "--out", str(out), "--run-dir", str(tmp_path / "run")]) \
        == 0
    results = json.loads(out.read_text())
    assert results["stress_check"]["max_deviation_vs_float64_finite_differences"] < 1e-4
    assert [run["target_bar"] for run in results["npt"]] == [1.0, 5000.0]
