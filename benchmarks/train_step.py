"""Time of one training step with the default objective, one torch thread.

    .venv/bin/python benchmarks/train_step.py --out docs/results/train_step.json

A step is what tridft train does per batch: collate, forward with -dE/dR (create_graph),
every loss term of the default configuration (Jacobian and conservative-force terms
included), backward (a double backward), gradient clipping and the AdamW update. Two
workloads: 16 bundled ethanol structures (9 atoms each) and 4 cells of 192-atom water
(../shared/data/deepmd_water_192_energy_forces.extxyz, or $TRIDFT_WATER). Reported: the
median over ``--repeats`` steps after ``--warmup`` steps, in wall and CPU milliseconds,
and structures and atoms per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from tridft.allocator import keep_freed_memory
from tridft.data.batch import Batch
from tridft.data.dataset import GraphDataset
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.files import write_json_atomic
from tridft.model.model import build_model
from tridft.train.config import TrainConfig
from tridft.train.losses import build_objective

sys.path.insert(0, str(Path(__file__).resolve().parent))
from water import water_path  # noqa: E402

WATER = water_path()


def default_training_step(records, batch_size: int):
    """What tridft train does for one batch with the default configuration, as a function.

    Returns ``(step, model, dataset)``: ``step(i)`` collates the i-th batch of
    ``batch_size`` structures (cycling through ``records``), runs the forward pass with
    -dE/dR, every default loss term, the double backward, gradient clipping and the AdamW
    update, and returns the batch.
    """
    config = TrainConfig()
    dataset = GraphDataset(records, config.model.cutoff)
    stats = dataset.stats()
    torch.manual_seed(0)
    model = build_model(config.model, stats).train()
    objective = build_objective(config.loss, stats)
    tasks = [task for task in config.loss.tasks() if task in model.heads
             or task == "conservative_forces"]
    weights = config.loss.weights
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step(index: int) -> Batch:
        indices = [(index * batch_size + k) % len(dataset) for k in range(batch_size)]
        batch = dataset.collate(indices, dtype=torch.float32)
        outputs = model(batch, forces="both")
        losses = objective(outputs, batch, step=1000)
        total = sum(weights[t] * losses.tasks[t] for t in tasks) + losses.regularization()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.training.grad_clip)
        optimizer.step()
        return batch

    return step, model, dataset


def time_steps(records, batch_size: int, repeats: int, warmup: int) -> dict:
    step, _, _ = default_training_step(records, batch_size)
    walls, cpus = [], []
    for index in range(warmup + repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        batch = step(index)
        if index >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    wall_ms, cpu_ms = 1000 * statistics.median(walls), 1000 * statistics.median(cpus)
    atoms = batch.positions.shape[0]
    return {"batch_structures": batch_size, "batch_atoms": int(atoms),
            "wall_ms": wall_ms, "cpu_ms": cpu_ms,
            "structures_per_s": batch_size / (wall_ms / 1000),
            "atoms_per_s": atoms / (wall_ms / 1000), "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="a few steps (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1
    torch.set_num_threads(1)
    keep_freed_memory()  # as tridft train does
    results = {"threads": 1, "ethanol": time_steps(
        read_structures(bundled_dataset_path())[:160], 16, args.repeats, args.warmup)}
    print(f"ethanol, 16 structures: {results['ethanol']['wall_ms']:.1f} ms per step "
          f"(CPU {results['ethanol']['cpu_ms']:.1f} ms)")
    if WATER.is_file():
        water = read_structures(WATER)[:16]
        results["water_192"] = time_steps(water, 4, max(args.repeats // 4, 3), args.warmup // 2)
        print(f"water, 4 cells of 192 atoms: {results['water_192']['wall_ms']:.0f} ms per "
              f"step, {results['water_192']['structures_per_s']:.1f} structures/s, "
              f"{results['water_192']['atoms_per_s']:.0f} atoms/s")
    if args.out:
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
