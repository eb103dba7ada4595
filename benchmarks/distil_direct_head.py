"""How closely can a direct force head follow a finished energy surface? A distillation test.

    .venv/bin/python benchmarks/distil_direct_head.py runs/demo --minutes 6 --sigma 0.02 \
        --out docs/results/x.json

The teacher is a trained run's model (its -dE/dR fixed). The student starts as a copy of
it; its backbone, bottleneck and direct force head (not the energy or polarizability
heads) are trained for ``--minutes`` on one thing only: the teacher's -dE/dR, on batches
of 16 training structures, half of whose atoms (at random) are displaced by Gaussian
noise of ``--sigma`` Angstrom (0: the training structures as they are). AdamW, lr 1e-3,
no schedule. Every 1000 steps and at the end: on the run's test structures, the mean
|F_student - F_teacher(-dE/dR)| per atom and both force MAEs against the labels
(meV/Angstrom). If the student cannot follow the teacher much better than the direct
head follows the labels, no training recipe for the two heads will make them agree.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from tridft.data.dataset import GraphDataset
from tridft.files import write_json_atomic
from tridft.model.model import CONSERVATIVE_FORCES, ENERGY, FORCES, POLARIZABILITY
from tridft.model.persistence import load_model
from tridft.train.config import load_config
from tridft.train.run_data import load_data

BATCH = 16


def agreement(student, teacher, test: GraphDataset) -> dict:
    """meV/A on the test structures: student vs teacher, and each against the labels."""
    student.eval()
    batch = test.collate(list(range(len(test))), dtype=torch.float32)
    f_student = student(batch)[FORCES].detach()  # (N, 3) eV/A
    f_teacher = teacher(batch, forces="conservative")[CONSERVATIVE_FORCES].detach()
    student.train()
    return {"student_vs_teacher": 1000 * float(torch.linalg.norm(f_student - f_teacher,
                                                                  dim=-1).mean()),
            "student_mae": 1000 * float((f_student - batch.forces).abs().mean()),
            "teacher_mae": 1000 * float((f_teacher - batch.forces).abs().mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="run folder (model.pt, split.json, config.yaml)")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--sigma", type=float, default=0.02, help="Angstrom; 0: no displacement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    run = Path(args.run)
    teacher = load_model(run / "model.pt").eval()
    data = load_data(load_config(run / "config.yaml"), run, resume=True)
    test = GraphDataset(data.test, teacher.cutoff)
    student = copy.deepcopy(teacher).train()
    frozen = (f"heads.{ENERGY}.", f"heads.{POLARIZABILITY}.")
    trained = [p for name, p in student.named_parameters() if not name.startswith(frozen)]
    optimizer = torch.optim.AdamW(trained, lr=1e-3)

    history = [{"step": 0, **agreement(student, teacher, test)}]
    print(history[-1], flush=True)
    start, step = time.perf_counter(), 0
    while time.perf_counter() - start < 60 * args.minutes:
        batch = data.train.collate(torch.randint(len(data.train), (BATCH,)).tolist(),
                                   dtype=torch.float32)
        if args.sigma:
            moved = (torch.rand(batch.positions.shape[0], 1) < 0.5).to(batch.positions.dtype)
            noise = args.sigma * torch.randn_like(batch.positions) * moved
            batch = replace(batch, positions=batch.positions + noise)
        target = teacher(batch, forces="conservative")[CONSERVATIVE_FORCES].detach()
        loss = ((student(batch)[FORCES] - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 1000 == 0:
            history.append({"step": step, **agreement(student, teacher, test)})
            print(history[-1], flush=True)
    history.append({"step": step, **agreement(student, teacher, test)})
    print(history[-1])
    if args.out:
        write_json_atomic(args.out, {"run": str(run), "minutes": args.minutes,
                                     "sigma_angstrom": args.sigma, "history": history})
    return 0


if __name__ == "__main__":
    sys.exit(main())
