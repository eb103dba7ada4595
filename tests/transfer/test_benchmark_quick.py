"""benchmarks/transfer.py --quick: the same code paths and JSON schema as the full run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_transfer_benchmark(tmp_path):
    output = tmp_path / "transfer.json"
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "transfer.py"), "--quick", "--out",
         str(output), "--keep-runs", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["benchmark"] == "transfer" and results["quick"] and results["complete"]
    settings = results["settings"]
    assert {"label_counts", "finetune", "base_model", "constant_mean_predictor_mae"} \
        <= set(settings)
    assert set(settings["base_model"]["validation"]) == {"energy_mae", "forces_mae",
                                                        "polarizability_mae"}
    expected = {(variant, n) for n in settings["label_counts"]
                for variant in ("frozen", "finetuned", "scratch", "untrained_frozen",
                                "rigid_charges")}
    expected |= {("scratch", n) for n in settings["scratch_extra_label_counts"]}
    assert {(run["variant"], run["n_train"]) for run in results["runs"]} == expected
    for run in results["runs"]:
        assert math.isfinite(run["dipole_mae"]) and run["dipole_mae"] > 0
        if run["variant"] != "rigid_charges":
            assert run["n_fit"] + run["n_early_stopping"] == run["n_train"]
    assert {row["variant"] for row in results["summary"]} == {v for v, _ in expected}
    assert set(results["claim"]) >= {"holds", "statement", "scratch_labels_to_match"}
    assert (tmp_path / "transfer.png").read_bytes()[:4] == b"\x89PNG"
