"""The benchmarks' --quick modes run end to end and write the documented JSON schema;
the pieces that decide what a benchmark measures (noise, label dropping, splits,
summaries, reuse of shared runs) do what the docs say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ablations  # noqa: E402
import common  # noqa: E402
import low_data  # noqa: E402
import noise  # noqa: E402
import plots  # noqa: E402
import tables  # noqa: E402

TOP_KEYS = {"benchmark", "quick", "complete", "command", "settings", "machine", "versions",
            "runs", "summary"}


def _check_schema(path: Path, benchmark: str, n_runs: int) -> dict:
    results = json.loads(path.read_text())
    assert TOP_KEYS <= set(results)
    assert results["benchmark"] == benchmark and results["quick"] and results["complete"]
    assert len(results["runs"]) == n_runs
    for run in results["runs"]:
        # Only trained heads are evaluated: a single-task run has only its own metric.
        tasks = run.get("tasks") or ["energy", "forces", "polarizability"]
        metrics = [f"{task}_mae" for task in ("energy", "forces", "polarizability")
                   if task in tasks] + ["train_time_s"]
        if "energy" in tasks and "forces" in tasks:
            metrics.append("jacobian_consistency_mae")
        for metric in metrics:
            assert np.isfinite(run[metric]) and run[metric] >= 0, (metric, run)
        assert run["stopped_because"] == "max_steps"
    return results


def test_ablations_quick(tmp_path):
    out = tmp_path / "ablations.json"
    ablations.main(["--quick", "--out", str(out), "--variants", "full,no_bottleneck,energy_only"])
    results = _check_schema(out, "ablations", 3)
    assert [run["variant"] for run in results["runs"]] == ["full", "no_bottleneck",
                                                           "energy_only"]
    assert results["runs"][2]["tasks"] == ["energy"]
    # Started again, it finds every run done and trains nothing new.
    ablations.main(["--quick", "--out", str(out), "--variants", "full,no_bottleneck,energy_only"])
    assert json.loads(out.read_text())["runs"] == results["runs"]


def test_low_data_and_noise_quick_and_their_tables_and_plots(tmp_path):
    low_data.main(["--quick", "--out", str(tmp_path / "low_data.json")])
    noise.main(["--quick", "--out", str(tmp_path / "noise.json")])
    # 2 curve points + 2 fractions x 2 models; 2 noise levels x with/without Jacobian.
    lows = _check_schema(tmp_path / "low_data.json", "low_data", 6)
    _check_schema(tmp_path / "noise.json", "noise", 4)
    sizes = sorted(run["n_train"] for run in lows["runs"] if run["variant"] == "learning_curve")
    assert sizes == list(low_data.QUICK_SIZES)
    single = [run for run in lows["runs"] if run.get("model") == "polarizability_only"]
    assert all(run["n_train"] == run["n_polarizability_labels"] for run in single)

    figures = tmp_path / "figures"
    plots.main(["--results", str(tmp_path), "--figures", str(figures)])
    assert (figures / "learning_curves.png").stat().st_size > 1000
    assert (figures / "noise_curves.png").stat().st_size > 1000
    tables.main(["--results", str(tmp_path)])


def test_noise_has_the_stated_size_and_leaves_the_originals_clean():
    data = common.load_benchmark_data(quick=False)
    scales = noise.noise_scales(data.pool, 0.1)
    noisy = noise.add_noise(data.pool, scales, np.random.default_rng(0))
    force_noise = np.concatenate([(n.forces - c.forces).ravel() for n, c in zip(noisy, data.pool)])
    energy_noise = np.array([n.energy - c.energy for n, c in zip(noisy, data.pool)])
    alpha_noise = np.stack([n.polarizability - c.polarizability for n, c in zip(noisy, data.pool)])
    # Sample standard deviations within a few standard errors of the requested ones.
    assert force_noise.std() == pytest.approx(0.1, rel=0.03)
    assert energy_noise.std() == pytest.approx(scales["energy"], rel=0.15)
    assert alpha_noise.std() == pytest.approx(scales["polarizability"], rel=0.1)
    assert np.allclose(alpha_noise, alpha_noise.transpose(0, 2, 1))  # tensors stay symmetric
    # The same relative size for every label: noise / label spread = sigma_F / rms(F).
    energies = np.array([r.energy for r in data.pool])
    assert scales["energy"] / energies.std() == pytest.approx(scales["relative"])
    # The originals (and so the clean test labels) are untouched.
    assert all(n.forces is not c.forces for n, c in zip(noisy, data.pool))
    assert not np.allclose(noisy[0].forces, data.pool[0].forces)


def test_partial_labels_are_nested_and_missing_means_absent(tmp_path):
    subsets = [set(low_data.labelled_subset(650, f, seed=0)) for f in (0.05, 0.10, 0.25, 1.0)]
    assert [len(s) for s in subsets] == [32, 65, 162, 650]
    assert subsets[0] < subsets[1] < subsets[2] < subsets[3]
    assert low_data.labelled_subset(650, 0.1, seed=1) != low_data.labelled_subset(650, 0.1, 0)

    data = common.load_benchmark_data(quick=True)
    records = common.copy_records(data.pool[:3])
    records[1].polarizability = None
    path = tmp_path / "train.extxyz"
    common.write_extxyz(records, path)
    back = common.read_structures(path)
    assert back[1].polarizability is None and back[0].polarizability is not None
    for original, read in zip(records, back):
        assert read.energy == pytest.approx(original.energy)
        assert np.allclose(read.forces, original.forces)
        assert np.allclose(read.positions, original.positions)


def test_split_keeps_test_and_validation_apart_from_training():
    data = common.load_benchmark_data(quick=False)
    assert (len(data.pool), len(data.validation), len(data.test)) == (650, 50, 100)
    train, validation, test = (set(data.splits.train), set(data.splits.validation),
                               set(data.splits.test))
    assert not (train & test) and not (train & validation) and not (validation & test)


def test_summary_is_mean_and_sample_std_over_seeds():
    runs = [{"variant": "a", "seed": 0, "energy_mae": 1.0},
            {"variant": "a", "seed": 1, "energy_mae": 3.0},
            {"variant": "b", "seed": 0, "energy_mae": 5.0}]
    summary = common.summarize(runs)
    assert summary[0] == {"variant": "a", "n_seeds": 2, "energy_mae_mean": 2.0,
                          "energy_mae_std": pytest.approx(np.sqrt(2.0)), "energy_mae_n": 2}
    assert summary[1]["energy_mae_std"] == 0.0 and summary[1]["n_seeds"] == 1


def test_a_shared_run_is_reused_only_under_the_same_settings(tmp_path):
    path = tmp_path / "ablations.json"
    path.write_text(json.dumps({"settings": {"base": {"training": {"max_steps": 5}}},
                                "runs": [{"variant": "full", "seed": 0, "energy_mae": 0.1}]}))
    same = common.reusable_run(path, {"variant": "full", "seed": 0},
                               {"training": {"max_steps": 5}})
    assert same["energy_mae"] == 0.1 and "reused_from" in same
    assert common.reusable_run(path, {"variant": "full", "seed": 0},
                               {"training": {"max_steps": 6}}) is None
    assert common.reusable_run(path, {"variant": "full", "seed": 1},
                               {"training": {"max_steps": 5}}) is None


PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not PEERS_PYTHON.is_file(),
                    reason="no peer environment (run benchmarks/setup_peers.sh)")
def test_peers_quick(tmp_path):
    out = tmp_path / "peers.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers" / "compare.py"), "--quick",
                    "--peers", "schnetpack_painn", "--out", str(out)], check=True, timeout=900)
    results = json.loads(out.read_text())
    assert results["complete"] and results["settings"]["peers_available"]
    trained = results["training"]
    assert set(trained) == {"tridft", "schnetpack_painn"}
    assert all(np.isfinite(trained[name]["forces_mae"]) for name in trained)
    for name in ("tridft", "schnetpack_painn"):
        speed = results["speed"][name]
        assert speed["ethanol"]["structures_per_s"] > 0
        assert [point["atoms"] for point in speed["water"]] == [192, 384]
        assert speed["water"][1]["peak_rss_mb"] >= speed["water"][0]["peak_rss_mb"]
