"""What keeping freed memory in the process (tridft.allocator) saves, one torch thread.

    .venv/bin/python benchmarks/allocator.py --out docs/results/allocator.json

Each workload runs twice in a fresh process, with ``TRIDFT_KEEP_FREED_MEMORY=0`` (glibc's
defaults) and ``=1`` (what tridft commands do): a training step of 16 ethanol structures
(benchmarks/train_step.py's default step: forward with -dE/dR, every loss term, double
backward, gradient clipping, AdamW), the same for 2 cells of 192-atom water, and the
calculator's work for one MD step of a water cell (energy and -dE/dR, no parameter
gradients). Reported: the median wall time per step, and the page faults and system CPU
time per step (``getrusage``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("ethanol_train_16", "water_train_2", "water_md_step")


def measure(workload: str, repeats: int) -> dict:
    import torch

    from tridft.allocator import keep_freed_memory
    from tridft.data.io import bundled_dataset_path, read_structures

    sys.path.insert(0, str(HERE))
    from train_step import default_training_step
    from water import water_path

    torch.set_num_threads(1)
    applied = keep_freed_memory()
    if workload.startswith("ethanol"):
        records, batch_size = read_structures(bundled_dataset_path())[:64], 16
    else:
        records, batch_size = read_structures(water_path())[:8], 2
    train_step, model, dataset = default_training_step(records, batch_size)
    md_batch = dataset.collate([0], dtype=torch.float32)

    def md_step(step: int) -> None:
        model(md_batch, forces="conservative")

    if workload.endswith("md_step"):
        model.eval()
        run = md_step
    else:
        run = train_step
    for step in range(3):
        run(step)
    walls, faults, system = [], [], []
    for step in range(repeats):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        run(step)
        after = resource.getrusage(resource.RUSAGE_SELF)
        walls.append(time.perf_counter() - start)
        faults.append(after.ru_minflt - before.ru_minflt)
        system.append(after.ru_stime - before.ru_stime)
    return {"kept": applied, "wall_ms": 1000 * statistics.median(walls),
            "page_faults_per_step": statistics.mean(faults),
            "system_ms_per_step": 1000 * statistics.mean(system), "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.repeats)))
        return 0
    results: dict = {"threads": 1}
    for workload in WORKLOADS:
        results[workload] = {}
        for keep in ("0", "1"):
            env = {**os.environ, "TRIDFT_KEEP_FREED_MEMORY": keep}
            output = subprocess.run([sys.executable, __file__, "--child", workload,
                                     "--repeats", str(args.repeats)], env=env, check=True,
                                    capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            results[workload]["kept" if keep == "1" else "glibc_default"] = row
            print(f"{workload:18s} keep={keep}: {row['wall_ms']:8.1f} ms, "
                  f"{row['page_faults_per_step']:8.0f} page faults, "
                  f"{row['system_ms_per_step']:6.1f} ms system per step", flush=True)
    if args.out:
        from tridft.files import write_json_atomic
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
