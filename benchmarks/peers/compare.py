"""tridft next to SchNetPack and MACE on the same machine, split and wall-clock budget.

    bash benchmarks/setup_peers.sh                      # once: .venv-peers
    .venv/bin/python benchmarks/peers/compare.py        # -> docs/results/peers.json
    .venv/bin/python benchmarks/peers/compare.py --quick

Runs in the tridft environment and starts every peer in .venv-peers (the peers
are never tridft dependencies). Steps:

1. writes the benchmark split (common.py: 650 train, 50 validation, 100 test of
   the bundled ethanol set) as indices to docs/results/peers_split.json;
2. trains, one after the other, each with the same wall-clock budget and the
   same number of torch threads (1, see THREADS): tridft (energy, forces, polarizability;
   its trainer with a time limit), SchNetPack PaiNN (energy, forces,
   polarizability), SchNetPack PaiNN (polarizability only), MACE (energy and
   forces) and MACE AtomicDielectricMACE (polarizability; dipole not trained);
3. measures each energy/force model's inference speed and peak memory
   (speed.py): a batch of 100 ethanol structures, and periodic water boxes of
   192 to 12,288 atoms (the 192-atom cell of
   /work/shared/data/deepmd_water_192_energy_forces.extxyz, replicated).

Every result is written as soon as it exists; a missing peer environment is
recorded as such (with the reason) instead of failing the whole comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
from water import water_path  # noqa: E402

PEERS_VENV = Path(os.environ.get("PEERS_VENV", common.ROOT / ".venv-peers"))
WATER = water_path()
# One torch thread per process. The machine has two cores, but they are shared: with
# other processes running, a two-thread torch process waits at every parallel region
# for its descheduled thread (measured here: MACE 20 s per training step with two
# threads against 0.6 s with one). One thread gives every code the same, stable share.
THREADS = 1
BUDGET_S = 90.0
SIZES = "192,768,1536,3072,6144,12288"
PEER_MODELS = [  # (name, code, tasks)
    ("schnetpack_painn", "schnetpack", "energy,forces,polarizability"),
    ("schnetpack_painn_polarizability", "schnetpack", "polarizability"),
    ("mace", "mace", "energy,forces"),
    ("mace_dielectric", "mace", "polarizability"),
]
SPEED_MODELS = ["tridft", "tridft_conservative", "schnetpack_painn", "mace"]
# MACE (max_ell 3, correlation 3) needed 4.4 GB at 3,072 atoms and ~70 s per call on
# one thread; 12,288 atoms would need ~17 GB of the machine's 24 GB shared with others.
MAX_SIZES = {"mace": "192,768,1536,3072,6144"}
SIZE_NOTES = {"mace": "measured up to 6,144 atoms: 12,288 would need ~17 GB "
                      "(4.4 GB at 3,072) of a 24 GB machine shared with other work"}


def train_tridft(data: common.Benchmark, budget_s: float, workdir: Path, quick: bool) -> dict:
    overrides = {"training": {"max_steps": None, "time_limit_minutes": budget_s / 60.0,
                              "num_threads": THREADS, "validate_every": 5 if quick else 50}}
    if quick:
        overrides["training"]["max_steps"] = 20
    metrics = common.train_and_test(data.pool, data, overrides, 0, workdir)
    return {"code": "tridft", "tasks": list(common.TASKS), "budget_s": budget_s,
            "threads": THREADS, **metrics}


def run_peer(name: str, code: str, tasks: str, split: Path, data_path: Path, budget_s: float,
             workdir: Path) -> dict:
    out, model = workdir / f"{name}.json", workdir / f"{name}.pt"
    command = [str(PEERS_VENV / "bin" / "python"), str(HERE / "train_peer.py"), "--code", code,
               "--tasks", tasks, "--data", str(data_path), "--split", str(split),
               "--budget", str(budget_s), "--threads", str(THREADS), "--out", str(out),
               "--model-out", str(model)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:] or ["failed"],
                "wall_s": time.perf_counter() - started}
    result = json.loads(out.read_text())
    result["model_path"] = str(model)
    result["wall_s"] = time.perf_counter() - started
    return result


def measure_speed(name: str, model_path: str, data_path: Path, workdir: Path, quick: bool) -> dict:
    code = "tridft" if name.startswith("tridft") else name.split("_")[0]
    python = common.ROOT / ".venv" / "bin" / "python" if code == "tridft" else \
        PEERS_VENV / "bin" / "python"
    out = workdir / f"speed-{name}.json"
    command = [str(python), str(HERE / "speed.py"), "--code", code, "--model", model_path,
               "--ethanol", str(data_path), "--water", str(WATER), "--threads", str(THREADS),
               "--out", str(out), "--sizes", "192,384" if quick else MAX_SIZES.get(name, SIZES),
               "--ethanol-batch", "10" if quick else "100",
               "--max-seconds", "1" if quick else "8"]
    if name == "tridft_conservative":
        command += ["--forces", "conservative"]
    tasks = {peer: peer_tasks for peer, _, peer_tasks in PEER_MODELS}.get(name)
    if tasks:
        command += ["--tasks", tasks]
    completed = subprocess.run(command, capture_output=True, text=True)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if name in SIZE_NOTES and not quick:
        result["note"] = SIZE_NOTES[name]
    if completed.returncode != 0:
        errors = [line for line in completed.stderr.splitlines() if "Error" in line]
        result["error"] = [f"exit status {completed.returncode}"] + errors[-1:]
    return result


def measure_again(args, out: Path, report: dict, models: Path, data_path: Path) -> int:
    """Speed of the models of an earlier run, its training results kept."""
    previous = json.loads(out.read_text())
    report["training"] = previous["training"]
    report["settings"] = previous["settings"]
    paths = {"tridft": models / "tridft" / "run" / "model.pt",
             "tridft_conservative": models / "tridft" / "run" / "model.pt",
             **{name: models / f"{name}.pt" for name, _, _ in PEER_MODELS}}
    for name in SPEED_MODELS:
        if paths[name].is_file():
            common.logger.info("speed of %s", name)
            report["speed"][name] = measure_speed(name, str(paths[name]), data_path, models,
                                                  args.quick)
            common.write_json_atomic(out, report)
    report["complete"] = True
    common.write_json_atomic(out, report)
    print(out)
    return 0


def main(argv=None) -> int:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None, help="seconds per model")
    parser.add_argument("--speed-only", type=Path, default=None, metavar="DIR",
                        help="keep the training results of the existing results file and "
                             "measure the speed again with the models saved in DIR (the "
                             "work folder of an earlier run, printed in its log)")
    parser.add_argument("--peers", default=",".join(name for name, _, _ in PEER_MODELS),
                        help="comma-separated peer models to train (default: all)")
    args = parser.parse_args(argv)
    chosen = args.peers.split(",") if args.peers else []
    unknown = sorted(set(chosen) - {name for name, _, _ in PEER_MODELS})
    if unknown:
        parser.error(f"unknown peer model(s): {', '.join(unknown)}")
    common.setup_logging()
    budget = args.budget or (4.0 if args.quick else BUDGET_S)
    data = common.load_benchmark_data(args.quick)
    out = common.output_path(args, "peers")
    workdir = Path(tempfile.mkdtemp(prefix="tridft-peers-"))
    split_path = (workdir if args.quick else common.RESULTS) / "peers_split.json"
    data_path = Path(common.bundled_dataset_path())
    indices = {"train": data.splits.train[:len(data.pool)],
               "validation": data.splits.validation[:len(data.validation)],
               "test": data.splits.test[:len(data.test)], "n": data.splits.n}
    common.write_json_atomic(split_path, indices)

    peers_available = (PEERS_VENV / "bin" / "python").is_file()
    report = {"benchmark": "peers", "quick": args.quick, "complete": False,
              "command": "benchmarks/peers/compare.py" + (" --quick" if args.quick else ""),
              "settings": {"budget_s": budget, "threads": THREADS, "sizes": SIZES,
                           "peers_venv": str(PEERS_VENV), "peers_available": peers_available,
                           "n_train": len(data.pool), "n_validation": len(data.validation),
                           "n_test": len(data.test), "split": str(split_path.name)},
              **common.environment(), "training": {}, "speed": {}}
    if not peers_available:
        report["settings"]["peers_missing_reason"] = (
            f"{PEERS_VENV} does not exist: run benchmarks/setup_peers.sh")

    def save():
        common.write_json_atomic(out, report)

    common.logger.info("work folder %s", workdir)
    if args.speed_only is not None:
        return measure_again(args, out, report, args.speed_only, data_path)
    common.logger.info("training tridft (%.0f s budget)", budget)
    report["training"]["tridft"] = train_tridft(data, budget, workdir / "tridft", args.quick)
    model_paths = {"tridft": str(workdir / "tridft" / "run" / "model.pt"),
                   "tridft_conservative": str(workdir / "tridft" / "run" / "model.pt")}
    save()
    if peers_available:
        for name, code, tasks in (model for model in PEER_MODELS if model[0] in chosen):
            common.logger.info("training %s (%.0f s budget)", name, budget)
            result = run_peer(name, code, tasks, split_path, data_path, budget, workdir)
            report["training"][name] = result
            if "model_path" in result:
                model_paths[name] = result["model_path"]
            common.logger.info("%s: %s", name, {k: v for k, v in result.items()
                                                if k.endswith("_mae") or k == "error"})
            save()
    for name in SPEED_MODELS:
        if name in model_paths:
            common.logger.info("speed of %s", name)
            report["speed"][name] = measure_speed(name, model_paths[name], data_path, workdir,
                                                  args.quick)
            save()
    report["complete"] = True
    save()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
