"""benchmarks/peers/side_by_side.py: the split it trains on, its table, and (with the
peer environment) its --quick run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import side_by_side  # noqa: E402

PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"


def test_split_is_seeded_disjoint_and_copies_the_frames_unchanged(tmp_path):
    blocks = side_by_side.frames(side_by_side.DATA)
    assert len(blocks) == 800 and all(block.startswith("9\n") for block in blocks)
    split = side_by_side.make_split(len(blocks), 0, side_by_side.SIZES["full"])
    sets = [set(split[name]) for name in ("train", "validation", "test")]
    assert [len(s) for s in sets] == [640, 80, 80]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert split == side_by_side.make_split(800, 0, side_by_side.SIZES["full"])
    assert split["test"] != side_by_side.make_split(800, 1, side_by_side.SIZES["full"])["test"]

    paths = side_by_side.write_split(blocks, split, tmp_path)
    test_blocks = side_by_side.frames(paths["test"])
    assert test_blocks == [blocks[i] for i in split["test"]]
    assert json.loads(paths["split"].read_text())["validation"] == split["validation"]


def _entry(peer: str, seed: int, quick: bool = False) -> dict:
    tridft = {"steps": 100, "epochs": 2.5, "energy_mae_meV": 20.0,
              "forces_mae_meV_per_A": 80.0, "conservative_forces_mae_meV_per_A": 90.0,
              "polarizability_mae_A3": 0.02, "structures_per_s": 1000.0,
              "structures_per_s_conservative": 600.0}
    peer_model = {"steps": 50, "epochs": 0.8, "energy_mae_meV": 40.0,
                  "energy_mae_without_bias_meV": 30.0, "forces_mae_meV_per_A": 40.0,
                  "polarizability_mae_A3": None, "structures_per_s": 100.0}
    return {"peer": peer, "seed": seed, "budget_minutes": 5.0, "quick": quick,
            "tridft": tridft, "peer_model": peer_model,
            "ratios_peer_over_tridft": side_by_side.ratios(peer_model, tridft)}


def test_table_has_both_models_of_each_run_and_the_ratios():
    results = {"runs": [_entry("mace", 0), _entry("mace", 0, quick=True)]}
    ratios = results["runs"][0]["ratios_peer_over_tridft"]
    assert ratios["energy"] == 2.0 and ratios["forces"] == 0.5
    assert ratios["speed_tridft_over_peer"] == 10.0 and "polarizability" not in ratios
    lines = side_by_side.table(results).splitlines()
    assert len(lines) == 4  # header, rule, tridft, peer (the quick run left out)
    assert "| 100 (2.5) | — | 20.0 | 80.0 (−dE/dR 90.0) | 20.0 |" in lines[2]
    assert "2.00×, 0.50×, —" in lines[3] and "40.0 (30.0 w/o offset)" in lines[3]
    assert lines[2].endswith("| 1000; −dE/dR 600 |") and lines[3].endswith("| 100 |")
    assert len(side_by_side.table(results, include_quick=True).splitlines()) == 4
    # A training process that got much less CPU than wall time is flagged.
    results["runs"][0]["peer_model"]["process"] = {"cpu_s": 120.0, "wall_s": 330.0}
    assert "core shared (peer)" in side_by_side.table(results).splitlines()[2]


@pytest.mark.slow
@pytest.mark.skipif(not PEERS_PYTHON.is_file(),
                    reason="no peer environment (run benchmarks/setup_peers.sh)")
def test_side_by_side_quick(tmp_path):
    out = tmp_path / "side_by_side.json"
    allowed = sorted(os.sched_getaffinity(0))
    cores = f"{allowed[0]},{allowed[-1]}"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers" / "side_by_side.py"),
                    "--quick", "--peer", "schnetpack_painn", "--cores", cores, "--out", str(out)],
                   check=True, timeout=900)
    (run,) = json.loads(out.read_text())["runs"]
    assert run["quick"] and run["peer"] == "schnetpack_painn" and run["budget_s"] == 20.0
    assert (run["split"]["n_train"], run["split"]["n_validation"], run["split"]["n_test"]) \
        == side_by_side.SIZES["quick"]
    assert len(run["code"]["commit"]) == 40
    tridft, peer = run["tridft"], run["peer_model"]
    assert tridft["stopped_because"] == "time_limit" and tridft["steps"] > 0
    for model in (tridft, peer):
        for key in ("energy_mae_meV", "forces_mae_meV_per_A", "polarizability_mae_A3",
                    "structures_per_s", "epochs"):
            assert model[key] > 0, key
    assert tridft["conservative_forces_mae_meV_per_A"] > 0
    assert peer["result"]["recipe"] == "default" and peer["result"]["n_test"] == 16
    assert {"energy", "forces", "polarizability"} <= set(run["ratios_peer_over_tridft"])
