"""Train one peer model on the benchmark split within a wall-clock budget; test it.

Runs in the peer environment (see benchmarks/setup_peers.sh)::

    .venv-peers/bin/python benchmarks/peers/train_peer.py --code schnetpack \
        --tasks energy,forces,polarizability --split docs/results/peers_split.json \
        --budget 90 --out /tmp/spk.json --model-out /tmp/spk.pt

Two ways to train (``--recipe``):

- ``plain`` (the default, used by compare.py): the same plain loop for every code
  (Adam, shuffled mini-batches, the model with the lowest validation loss kept),
  with each code's default loss weights and learning rate (LOSS_DEFAULTS);
- ``default``: each code's own training recipe, as its command-line trainer runs
  it (RECIPES): SchNetPack's ``spktrain experiment=md17`` (AdamW, ReduceLROnPlateau,
  EMA 0.995) and MACE's ``mace_run_train`` defaults with ``--ema --swa`` (AMSGrad
  Adam with MACE's weight-decay groups, ReduceLROnPlateau, EMA 0.99, gradient
  clipping, and the second stage ("swa") over the last quarter of the budget:
  energy weight 1000, learning rate 1e-3, the best model chosen among stage-two
  validations only). Validation and the kept model use the EMA weights.

Both validate after every epoch (and after the last, partial one). The budget
counts everything after the data are featurized: training steps and validation.
Test metrics: MAE of the total energy (eV), of each force component (eV/A) and
of each polarizability component (A^3), against the file's labels.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: tridft-free helpers
from adapters import make_adapter  # noqa: E402
from measure import peak_rss_mb  # noqa: E402
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

# --recipe default: each code's own trainer, its defaults written out (read from the
# installed packages: schnetpack/configs/{train,experiment/md17,task/*,callbacks/ema}.yaml;
# mace/tools/arg_parser.py, scripts_utils.py and train.py).
RECIPES = {
    # spktrain experiment=md17: AdamW lr 1e-3 (md17's globals.lr), no weight decay,
    # ReduceLROnPlateau(factor 0.5, patience 75, threshold 0, cooldown 10) on the
    # validation loss, EMA 0.995 (validation and checkpoints with the EMA weights), batch
    # 10, MSE loss energy 0.01 / forces 0.99; no gradient clipping. SchNetPack has no
    # default weight for a polarizability output: 1 here (MSE in A^3, see LOSS_DEFAULTS).
    "schnetpack": {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 0.0, "amsgrad": False,
                   "scheduler": {"factor": 0.5, "patience": 75, "threshold": 0.0,
                                 "cooldown": 10},
                   "ema_decay": 0.995, "grad_clip": None, "batch_size": 10,
                   "loss": {"energy": 0.01, "forces": 0.99, "polarizability": 1.0},
                   "stage_two": None},
    # mace_run_train --ema --ema_decay 0.99 --swa (all else default): Adam with AMSGrad,
    # lr 0.01, weight decay 5e-7 on the interactions' linear weights and the products,
    # ReduceLROnPlateau(factor 0.8, patience 50), EMA 0.99, gradient norm clipped at 10,
    # batch 10; loss: energy per atom 1 / forces 100 (AtomicDielectricMACE: MACE's
    # DipolePolarLoss, polarizability per atom 1; the dipole is not trained here).
    # Stage two starts at 3/4 of the training (MACE: epoch max_num_epochs // 4 * 3; here
    # 3/4 of the wall-clock budget): loss weights energy 1000 / forces 100 (polarizability
    # 1), lr 1e-3 (SWALR with one annealing epoch reaches it at the switch), and the best
    # model is chosen again among the validations after the switch.
    "mace": {"optimizer": "Adam", "lr": 1e-2, "weight_decay": 5e-7, "amsgrad": True,
             "scheduler": {"factor": 0.8, "patience": 50},
             "ema_decay": 0.99, "grad_clip": 10.0, "batch_size": 10,
             "loss": {"energy_per_atom": 1.0, "forces": 100.0, "polarizability_per_atom": 1.0},
             "stage_two": {"start_fraction": 0.75, "lr": 1e-3,
                           "loss": {"energy_per_atom": 1000.0, "forces": 100.0,
                                    "polarizability_per_atom": 1.0}}},
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
        error = prediction["polarizability"] - target
        if "polarizability_per_atom" in weights:  # MACE: ((ref - pred) / atoms)^2
            atoms = torch.tensor([len(s.atoms) for s in structures], dtype=torch.float32)
            loss = loss + weights["polarizability_per_atom"] * (
                (error / atoms.view(-1, 1, 1)) ** 2).mean()
        else:
            loss = loss + weights["polarizability"] * (error ** 2).mean()
    return loss


def mace_parameter_groups(model, lr: float, weight_decay: float) -> list[dict]:
    """MACE's optimizer groups (tools/scripts_utils.get_params_options): weight decay on
    the interactions' linear and skip weights and on the products, none elsewhere."""
    decay, no_decay = [], []
    for name, parameter in model.interactions.named_parameters():
        (decay if "linear.weight" in name or "skip_tp_full.weight" in name
         else no_decay).append(parameter)
    groups = [{"params": list(model.node_embedding.parameters()), "weight_decay": 0.0},
              {"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0},
              {"params": list(model.products.parameters()), "weight_decay": weight_decay},
              {"params": list(model.readouts.parameters()), "weight_decay": 0.0}]
    grouped = {id(p) for group in groups for p in group["params"]}
    rest = [p for p in model.parameters() if id(p) not in grouped]
    if rest:  # e.g. scale/shift or other heads' parameters: no decay, as MACE's extra groups
        groups.append({"params": rest, "weight_decay": 0.0})
    for group in groups:
        group["lr"] = lr
    return groups


class Training:
    """Optimizer, scheduler, EMA and loss weights of one run (plain loop or a code's recipe)."""

    def __init__(self, code: str, recipe: str, model):
        self.recipe = recipe
        self.ema = None
        self.scheduler = None
        self.stage_two = None
        self.stage_two_started = None  # {"time_s", "step", "epoch"} once it has started
        if recipe == "plain":
            settings = LOSS_DEFAULTS[code]
            self.weights = settings
            self.batch_size = settings["batch_size"]
            self.grad_clip = None
            self.optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"],
                                              amsgrad=settings["amsgrad"])
            self.description = {"recipe": "plain", **settings}
            return
        settings = RECIPES[code]
        self.description = {"recipe": "default", **settings}
        self.weights = dict(settings["loss"])
        self.batch_size = settings["batch_size"]
        self.grad_clip = settings["grad_clip"]
        self.stage_two = settings["stage_two"]
        if code == "mace":
            self.optimizer = torch.optim.Adam(
                mace_parameter_groups(model, settings["lr"], settings["weight_decay"]),
                lr=settings["lr"], amsgrad=settings["amsgrad"], betas=(0.9, 0.999))
        else:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"],
                                               weight_decay=settings["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", **settings["scheduler"])
        from torch_ema import ExponentialMovingAverage

        self.ema = ExponentialMovingAverage(model.parameters(), decay=settings["ema_decay"])

    def step(self, model, loss) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=self.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()

    def averaged(self):
        """Context in which the model holds the weights that are validated and kept."""
        import contextlib

        return self.ema.average_parameters() if self.ema is not None else contextlib.nullcontext()

    def after_validation(self, validation_loss: float) -> None:
        # The plateau scheduler runs in stage one only (MACE switches to SWALR after).
        if self.scheduler is not None and self.stage_two_started is None:
            self.scheduler.step(validation_loss)

    def maybe_start_stage_two(self, elapsed_s: float, budget_s: float, step: int,
                              epoch: int) -> bool:
        """Switch to the stage-two loss weights and learning rate once 3/4 of the budget
        has passed; True when it switched now (the caller forgets its best model)."""
        if (self.stage_two is None or self.stage_two_started is not None
                or elapsed_s < self.stage_two["start_fraction"] * budget_s):
            return False
        self.weights = dict(self.stage_two["loss"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.stage_two["lr"]
        self.stage_two_started = {"time_s": elapsed_s, "step": step, "epoch": epoch}
        return True

    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


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
    parser.add_argument("--recipe", choices=("plain", "default"), default="plain",
                        help="plain: one Adam loop for every code; default: the code's own "
                             "training recipe (see RECIPES)")
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
    adapter = make_adapter(args.code, tasks)

    everything = read_labelled(args.data)
    split = load_split(args.split)
    parts = {name: [everything[i] for i in indices] for name, indices in split.items()}
    items = {name: [adapter.featurize(s.atoms) for s in structures]
             for name, structures in parts.items()}
    model = adapter.build(parts["train"])
    training = Training(args.code, args.recipe, model)
    size = training.batch_size

    # One forward/backward before the clock starts: e3nn and torch set themselves up on
    # the first call (seconds under load); that one-off cost is not training.
    warmup_started = time.perf_counter()
    model.train()
    prediction = adapter.predict(model, adapter.collate(items["train"][:size]), training=True)
    loss_terms(prediction, parts["train"][:size], training.weights, tasks).backward()
    training.optimizer.zero_grad()
    warmup_s = time.perf_counter() - warmup_started

    def validation_loss() -> float:
        model.eval()
        total, count = 0.0, 0
        for first in range(0, len(items["validation"]), 50):
            chunk = items["validation"][first:first + 50]
            prediction = adapter.predict(model, adapter.collate(chunk), training=False)
            total += len(chunk) * float(loss_terms(
                {k: v.detach() for k, v in prediction.items()},
                parts["validation"][first:first + 50], training.weights, tasks))
            count += len(chunk)
        return total / count

    start, started_unix = time.perf_counter(), time.time()
    best = (float("inf"), None, 0)
    epoch = steps = samples = 0
    history = []  # (epoch, seconds, validation loss, learning rate) after each epoch
    order = list(range(len(items["train"])))
    while time.perf_counter() - start < args.budget:
        model.train()
        random.shuffle(order)
        for first in range(0, len(order), size):
            if training.maybe_start_stage_two(time.perf_counter() - start, args.budget,
                                              steps, epoch):
                best = (float("inf"), None, 0)  # MACE: the best model of stage two is kept
            chosen = order[first:first + size]
            prediction = adapter.predict(model, adapter.collate([items["train"][i] for i in chosen]),
                                         training=True)
            loss = loss_terms(prediction, [parts["train"][i] for i in chosen], training.weights,
                              tasks)
            training.step(model, loss)
            steps += 1
            samples += len(chosen)
            if time.perf_counter() - start > args.budget:
                break
        epoch += 1
        with training.averaged():
            validation = validation_loss()
            if validation < best[0]:
                best = (validation, copy.deepcopy(model.state_dict()), epoch)
        training.after_validation(validation)
        history.append([epoch, round(time.perf_counter() - start, 2), validation,
                        training.learning_rate()])
    train_time = time.perf_counter() - start
    model.load_state_dict(best[1])

    metrics = test_metrics(adapter, model, parts["test"], items["test"], tasks)
    result = {"code": args.code, "tasks": list(tasks), "settings": adapter.settings,
              "recipe": args.recipe, "training": training.description,
              "loss": training.weights, "budget_s": args.budget, "train_time_s": train_time,
              "warmup_s": warmup_s, "clock_started_unix": started_unix,
              "clock_stopped_unix": started_unix + train_time, "epochs": epoch, "steps": steps,
              "epochs_of_data": samples / len(order), "batch_size": size,
              "best_epoch": best[2], "best_validation_loss": best[0],
              "stage_two_started": training.stage_two_started,
              "final_lr": training.learning_rate(), "validation_history": history,
              "threads": args.threads, "seed": args.seed,
              "n_train": len(parts["train"]), "n_validation": len(parts["validation"]),
              "n_test": len(parts["test"]), "versions": compat.versions(),
              "peak_rss_mb": peak_rss_mb(),
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
