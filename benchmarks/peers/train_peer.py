"""Train one peer model on the benchmark split within a wall-clock budget; test it.

Runs in the peer environment (see benchmarks/setup_peers.sh)::

    .venv-peers/bin/python benchmarks/peers/train_peer.py --code schnetpack \
        --tasks energy,forces,polarizability --split docs/results/peers_split.json \
        --budget 90 --out /tmp/spk.json --model-out /tmp/spk.pt

The loop is the same plain loop for every code (Adam, shuffled mini-batches,
the model with the lowest validation loss kept); the loss weights and learning
rates are each code's documented defaults (LOSS_DEFAULTS). The budget counts
everything after the data are featurized: training steps and validation.
Test metrics: MAE of the total energy (eV), of each force component (eV/A) and
of each polarizability component (A^3), against the file's labels.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapters import make_adapter  # noqa: E402
from structures import load_split, read_labelled  # noqa: E402
import compat  # noqa: E402

# Each code's defaults: MACE's weighted loss (energy per atom 1, forces 100, lr 0.01,
# AMSGrad, batch 10); SchNetPack's MD17 recipe (energy 0.01, forces 0.99, lr 5e-4,
# batch 10 here instead of 100 so that small budgets still take many steps).
# Polarizability (A^3, per component) gets weight 1 in both.
LOSS_DEFAULTS = {
    "mace": {"energy_per_atom": 1.0, "forces": 100.0, "polarizability": 1.0, "lr": 1e-2,
             "amsgrad": True, "batch_size": 10},
    "schnetpack": {"energy": 0.01, "forces": 0.99, "polarizability": 1.0, "lr": 5e-4,
                   "amsgrad": False, "batch_size": 10},
}


def loss_terms(prediction, structures, weights, tasks, device="cpu"):
    """Weighted MSE terms (eV, eV/A, A^3); structures: the batch's labelled Structures."""
    loss = 0.0
    if "energy" in tasks:
        target = torch.tensor([s.energy for s in structures], dtype=torch.float32)
        atoms = torch.tensor([len(s.atoms) for s in structures], dtype=torch.float32)
        error = prediction["energy"] - target
        if "energy_per_atom" in weights:
            loss = loss + weights["energy_per_atom"] * ((error / atoms) ** 2).mean()
        else:
            loss = loss + weights["energy"] * (error ** 2).mean()
    if "forces" in tasks:
        target = torch.tensor(np.concatenate([s.forces for s in structures]), dtype=torch.float32)
        loss = loss + weights["forces"] * ((prediction["forces"] - target) ** 2).mean()
    if "polarizability" in tasks:
        target = torch.tensor(np.stack([s.polarizability for s in structures]), dtype=torch.float32)
        loss = loss + weights["polarizability"] * ((prediction["polarizability"] - target) ** 2).mean()
    return loss


def test_metrics(adapter, model, structures, items, tasks, batch_size=50) -> dict:
    errors = {"energy": [], "forces": [], "polarizability": []}
    signed_energy = []
    model.eval()
    for start in range(0, len(items), batch_size):
        chunk = structures[start:start + batch_size]
        prediction = adapter.predict(model, adapter.collate(items[start:start + batch_size]),
                                     training=False)
        if "energy" in tasks:
            signed_energy.append(prediction["energy"].detach().numpy() - [s.energy for s in chunk])
            errors["energy"].append(np.abs(signed_energy[-1]))
            errors["forces"].append(np.abs(prediction["forces"].detach().numpy()
                                           - np.concatenate([s.forces for s in chunk])).ravel())
        if "polarizability" in tasks:
            errors["polarizability"].append(np.abs(
                prediction["polarizability"].detach().numpy()
                - np.stack([s.polarizability for s in chunk])).ravel())
    metrics = {f"{name}_mae": float(np.mean(np.concatenate(values)))
               for name, values in errors.items() if values}
    if signed_energy:  # a constant offset (eV) and the energy MAE without it
        signed = np.concatenate(signed_energy)
        metrics["energy_bias"] = float(np.mean(signed))
        metrics["energy_mae_without_bias"] = float(np.mean(np.abs(signed - signed.mean())))
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", choices=sorted(LOSS_DEFAULTS), required=True)
    parser.add_argument("--tasks", default="energy,forces,polarizability")
    parser.add_argument("--data", required=True, help="extxyz with energy, forces, polarizability")
    parser.add_argument("--split", required=True, help="JSON with train/validation/test indices")
    parser.add_argument("--budget", type=float, default=90.0, help="wall-clock seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="JSON result")
    parser.add_argument("--model-out", help="where to save the trained model (torch.save)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    tasks = tuple(args.tasks.split(","))
    weights = LOSS_DEFAULTS[args.code]
    adapter = make_adapter(args.code, tasks)

    everything = read_labelled(args.data)
    split = load_split(args.split)
    parts = {name: [everything[i] for i in indices] for name, indices in split.items()}
    items = {name: [adapter.featurize(s.atoms) for s in structures]
             for name, structures in parts.items()}
    model = adapter.build(parts["train"])
    optimizer = torch.optim.Adam(model.parameters(), lr=weights["lr"], amsgrad=weights["amsgrad"])

    # One forward/backward before the clock starts: e3nn and torch set themselves up on
    # the first call (seconds under load); that one-off cost is not training.
    warmup_started = time.perf_counter()
    model.train()
    prediction = adapter.predict(model, adapter.collate(items["train"][:weights["batch_size"]]),
                                 training=True)
    loss_terms(prediction, parts["train"][:weights["batch_size"]], weights, tasks).backward()
    optimizer.zero_grad()
    warmup_s = time.perf_counter() - warmup_started

    start = time.perf_counter()
    best = (float("inf"), None, 0)
    epoch = steps = 0
    order = list(range(len(items["train"])))
    size = weights["batch_size"]
    while time.perf_counter() - start < args.budget:
        model.train()
        random.shuffle(order)
        for first in range(0, len(order), size):
            chosen = order[first:first + size]
            prediction = adapter.predict(model, adapter.collate([items["train"][i] for i in chosen]),
                                         training=True)
            loss = loss_terms(prediction, [parts["train"][i] for i in chosen], weights, tasks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if time.perf_counter() - start > args.budget:
                break
        epoch += 1
        model.eval()
        prediction = adapter.predict(model, adapter.collate(items["validation"]), training=False)
        validation = float(loss_terms({k: v.detach() for k, v in prediction.items()},
                                      parts["validation"], weights, tasks))
        if validation < best[0]:
            best = (validation, copy.deepcopy(model.state_dict()), epoch)
    train_time = time.perf_counter() - start
    model.load_state_dict(best[1])

    metrics = test_metrics(adapter, model, parts["test"], items["test"], tasks)
    result = {"code": args.code, "tasks": list(tasks), "settings": adapter.settings,
              "loss": weights, "budget_s": args.budget, "train_time_s": train_time, "warmup_s": warmup_s,
              "epochs": epoch, "steps": steps, "best_epoch": best[2],
              "best_validation_loss": best[0], "threads": args.threads, "seed": args.seed,
              "n_train": len(parts["train"]), "n_validation": len(parts["validation"]),
              "n_test": len(parts["test"]), "versions": compat.versions(),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              **metrics}
    if args.model_out:
        torch.save(model, args.model_out)
    temporary = f"{args.out}.tmp"
    Path(temporary).write_text(json.dumps(result, indent=1))
    os.replace(temporary, args.out)
    print(json.dumps({k: v for k, v in result.items() if k.endswith("_mae") or k == "epochs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
