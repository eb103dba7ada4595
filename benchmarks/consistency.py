"""Where the two force estimates agree: |F_direct + dE/dR| on and off the training set.

    .venv/bin/python benchmarks/consistency.py runs/demo --out docs/results/x.json

For a run folder (its model.pt, split.json and training data): the mean length of
F_direct - (-dE/dR) per atom, and both force MAEs (per component) against the labels,
on (up to ``--frames``) training structures, on the test structures, and on training
structures whose atoms are displaced by Gaussian noise of each ``--sigmas`` width
(Angstrom; no labels there, only the disagreement). One thread; the JSON holds every
number printed, in meV/Angstrom.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

from tridft.data.dataset import GraphDataset
from tridft.files import write_json_atomic
from tridft.model.model import CONSERVATIVE_FORCES
from tridft.model.persistence import load_model
from tridft.train.config import load_config
from tridft.train.run_data import load_data

BATCH = 40


def force_errors(model, records, sigma: float = 0.0, seed: int = 0) -> dict:
    """meV/Angstrom: mean |F_direct + dE/dR|, and (undisplaced only) both force MAEs."""
    dataset = GraphDataset(records, model.cutoff)
    generator = torch.Generator().manual_seed(seed)
    disagreement, direct, conservative = [], [], []
    for start in range(0, len(dataset), BATCH):
        batch = dataset.collate(list(range(start, min(start + BATCH, len(dataset)))),
                                dtype=torch.float32)
        if sigma:
            noise = torch.randn(batch.positions.shape, generator=generator)
            batch = replace(batch, positions=batch.positions + sigma * noise)
        outputs = model(batch, forces="both")
        f_direct = outputs["forces"].detach()  # (N, 3) eV/A
        f_conservative = outputs[CONSERVATIVE_FORCES].detach()
        disagreement.append(torch.linalg.norm(f_direct - f_conservative, dim=-1))
        if not sigma:
            direct.append((f_direct - batch.forces).abs().flatten())
            conservative.append((f_conservative - batch.forces).abs().flatten())
    result = {"structures": len(records), "sigma_angstrom": sigma,
              "disagreement": 1000 * float(torch.cat(disagreement).mean())}
    if not sigma:
        result["direct_mae"] = 1000 * float(torch.cat(direct).mean())
        result["conservative_mae"] = 1000 * float(torch.cat(conservative).mean())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder (model.pt, split.json, config.yaml)")
    parser.add_argument("--frames", type=int, default=200,
                        help="training structures measured (default 200)")
    parser.add_argument("--sigmas", default="0.01,0.02,0.05,0.1",
                        help="displacements of the training structures, Angstrom")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run = Path(args.run)
    # The run's own data and split (split.json), read as its training read them.
    data = load_data(load_config(run / "config.yaml"), run, resume=True)
    model = load_model(run / "model.pt").eval()
    train = data.train.records[:args.frames]
    results = {"run": str(run), "train": force_errors(model, train),
               "test": force_errors(model, data.test),
               "displaced_train": [force_errors(model, train, float(s))
                                   for s in args.sigmas.split(",")]}
    for name in ("train", "test"):
        r = results[name]
        print(f"{name:>5}: |F_direct + dE/dR| {r['disagreement']:6.1f}   direct MAE "
              f"{r['direct_mae']:5.1f}   -dE/dR MAE {r['conservative_mae']:5.1f} meV/A")
    for r in results["displaced_train"]:
        print(f"train displaced by {r['sigma_angstrom']:.2f} A: |F_direct + dE/dR| "
              f"{r['disagreement']:6.1f} meV/A")
    if args.out:
        write_json_atomic(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
