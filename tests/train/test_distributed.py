"""Data-parallel training: two processes on each global batch take the same steps as one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from tridft.data.stats import DatasetStats
from tridft.model.model import build_model
from tridft.model.persistence import safe_torch_load
from tridft.train.loop import train

from .tiny import tiny_config, write_ethanol_subset


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_same_global_batches(tmp_path):
    # Structures without polarizability make the two halves of a batch carry different
    # numbers of labels: the loss denominators must still be those of the whole batch.
    data = write_ethanol_subset(tmp_path / "ethanol.extxyz", 20,
                                without_polarizability={0, 2, 3, 7, 11})
    sections = dict(
        model={"dtype": "float64", "variational": False},  # no sampling noise to differ
        training={"batch_size": 8, "max_steps": 4, "validate_every": 2, "checkpoint_every": 4,
                  "gradient_cosine_every": 2},
        loss={"balancing": "gradnorm", "pcgrad": True})  # per-task gradients across processes
    single = tiny_config(tmp_path / "single", data, **sections)
    train(single, progress=False)

    parallel = tiny_config(tmp_path / "parallel", data, **sections)
    config_path = tmp_path / "parallel.yaml"
    config_path.write_text(yaml.safe_dump(parallel.model_dump(mode="json")))
    port = str(free_port())
    processes = []
    for rank in range(2):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "OMP_NUM_THREADS": "1"}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "tridft.cli.main", "train", str(config_path),
             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    assert "model:" in outputs[0][0] and outputs[1][0] == ""  # only rank 0 reports

    expected = safe_torch_load(tmp_path / "single" / "checkpoint.pt")
    actual = safe_torch_load(tmp_path / "parallel" / "checkpoint.pt")
    assert actual["progress"]["step"] == expected["progress"]["step"] == 4
    for name, value in expected["model"]["state_dict"].items():
        assert torch.allclose(actual["model"]["state_dict"][name], value,
                              rtol=1e-9, atol=1e-12), name
    for name, value in expected["ema"]["model"].items():
        assert torch.allclose(actual["ema"]["model"][name], value, rtol=1e-9, atol=1e-12), name
    assert torch.allclose(actual["balancer"]["task_weights"],
                          expected["balancer"]["task_weights"], rtol=1e-9)
    # The parameters did move: the comparison is not between two untouched models.
    torch.manual_seed(single.training.seed)
    stats = DatasetStats.from_dict(json.loads((tmp_path / "single" / "stats.json").read_text()))
    initial = build_model(single.model, stats).state_dict()
    assert any(not torch.allclose(initial[name], value)  # the dipole head comes on top
               for name, value in expected["model"]["state_dict"].items() if name in initial)
