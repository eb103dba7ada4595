"""tridft and one peer trained at the same time, one core each, for the same wall-clock budget.

    bash benchmarks/setup_peers.sh                                   # once: .venv-peers
    .venv/bin/python benchmarks/peers/side_by_side.py --peer mace --minutes 5 --seed 0
    .venv/bin/python benchmarks/peers/side_by_side.py --peer mace --quick    # ~1 minute
    .venv/bin/python benchmarks/peers/side_by_side.py --table                # markdown
    .venv/bin/python benchmarks/peers/side_by_side.py --update-doc docs/benchmarks.md

Runs in the tridft environment (it imports neither tridft nor a peer: every model
runs in a process of its own). One run:

1. split: the bundled 800 ethanol structures (PBE/def2-SVP), permuted with
   numpy's default_rng(seed): the first 80 are the test set, the next 80 the
   validation set, the other 640 the training set (--quick: 16/16/48). The test
   structures are used by neither training nor model selection; every number of
   the table is measured on them. The frames are copied, text unchanged, into
   train/validation/test extxyz files for tridft; the peers read the same frames
   by index from the bundled file;
2. training, both processes started together: ``tridft train`` with its default
   configuration plus ``data.train/validation/test`` (the split's files),
   ``training.time_limit_minutes`` (the budget), ``training.max_steps=null`` (so
   that the budget, not the default 3000 steps, ends training) and
   ``training.seed`` under ``taskset -c 0``; the peer with its own recipe
   (train_peer.py --recipe default) under ``taskset -c 1``; each with one torch
   thread and OMP/MKL/OpenBLAS_NUM_THREADS=1. tridft runs the source of the
   commit HEAD (a ``git archive`` of src/ on PYTHONPATH), so edits in the working
   tree during a run change nothing, and the commit recorded is what ran;
3. test: each model, as its trainer kept it (best validation), on the test
   structures: energy MAE (meV), force MAE (meV/A, per component; tridft: the
   direct head and -dE/dR), polarizability MAE (A^3, per component);
4. speed: structures per second for one batch of 100 ethanol structures, from
   ase.Atoms to predictions, one torch thread (speed.py; each on its own core,
   one after the other): tridft with the direct head and with -dE/dR, the peer.

Each run is appended to docs/results/peers_side_by_side.json (--quick: a temporary
file unless --out is given) with the budget, seed, peer, both models' numbers,
the CPU time of each training process and the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from measure import machine, source_sha256  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "peers_side_by_side.json"
DATA = ROOT / "src" / "tridft" / "datasets" / "ethanol_pbe_def2svp_800.extxyz"
TRIDFT_PYTHON = Path(os.environ.get("TRIDFT_PYTHON", ROOT / ".venv" / "bin" / "python"))
PEERS_VENV = Path(os.environ.get("PEERS_VENV", ROOT / ".venv-peers"))

# name -> (train_peer.py --code, --tasks, what the table calls it)
PEERS = {
    "mace": ("mace", "energy,forces", "MACE (ScaleShiftMACE)"),
    "schnetpack_painn": ("schnetpack", "energy,forces,polarizability", "SchNetPack PaiNN"),
    "mace_dielectric": ("mace", "polarizability", "MACE AtomicDielectricMACE"),
}
SIZES = {"full": (640, 80, 80), "quick": (48, 16, 16)}  # train, validation, test
QUICK_SECONDS = 20.0
CORES = (0, 1)  # tridft, peer (--cores)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
LAUNCH_TRIDFT = "import sys; sys.argv[0] = 'tridft'; from tridft.cli.main import main; sys.exit(main())"
EVALUATE_TRIDFT = """
import json, sys
from tridft.data.io import read_structures
from tridft.model.persistence import load_model
from tridft.train.evaluate import evaluate
model = load_model(sys.argv[1])
metrics = evaluate(model, read_structures(sys.argv[2]), forces="direct")
print(json.dumps({"metrics": metrics, "training": model.metadata.get("training", {}),
                  "config": model.metadata.get("config", {}),
                  "tasks": model.metadata.get("tasks", {})}))
"""


# ---- split ---------------------------------------------------------------------------------


def frames(path: Path) -> list[str]:
    """The extxyz file's frames as text blocks (atom count line, comment, atom lines)."""
    lines = path.read_text().splitlines(keepends=True)
    blocks, at = [], 0
    while at < len(lines):
        if not lines[at].strip():
            at += 1
            continue
        count = int(lines[at])
        blocks.append("".join(lines[at:at + count + 2]))
        at += count + 2
    return blocks


def make_split(n: int, seed: int, sizes: tuple[int, int, int]) -> dict[str, list[int]]:
    """Indices: test = the first n_test of the seed's permutation, validation the next
    n_validation, train the next n_train (all 800 - 160 = 640 in the full split)."""
    n_train, n_validation, n_test = sizes
    if n_train + n_validation + n_test > n:
        raise ValueError(f"{sizes} needs more than the {n} structures")
    order = np.random.default_rng(seed).permutation(n).tolist()
    return {"test": order[:n_test], "validation": order[n_test:n_test + n_validation],
            "train": order[n_test + n_validation:n_test + n_validation + n_train], "n": n}


def write_split(blocks: list[str], split: dict, folder: Path) -> dict[str, Path]:
    paths = {}
    for name in ("train", "validation", "test"):
        paths[name] = folder / f"{name}.extxyz"
        paths[name].write_text("".join(blocks[i] for i in split[name]))
    paths["split"] = folder / "split.json"
    paths["split"].write_text(json.dumps(split))
    return paths


# ---- code state ----------------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def snapshot_source(folder: Path) -> dict:
    """src/ of the commit HEAD, unpacked into folder/src (what tridft runs from)."""
    commit = git("rev-parse", "HEAD")
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    dirty = bool(git("status", "--porcelain", "--", "src"))
    return {"commit": commit, "source": "git archive of the commit (src/), on PYTHONPATH",
            "source_sha256": source_sha256(folder),
            "worktree_had_uncommitted_source_changes": dirty,
            "note": "uncommitted changes in the working tree were not part of this run"}


# ---- running -------------------------------------------------------------------------------


def tridft_env(source: Path) -> dict:
    return {**os.environ, **ONE_THREAD, "PYTHONPATH": str(source / "src")}


def peer_env() -> dict:
    env = {**os.environ, **ONE_THREAD}
    env.pop("PYTHONPATH", None)
    return env


def train_commands(args, paths: dict, workdir: Path, budget_s: float, source: Path):
    minutes = budget_s / 60.0
    tridft = ["taskset", "-c", str(args.cores[0]), str(TRIDFT_PYTHON), "-c", LAUNCH_TRIDFT,
              "train", "--no-progress",
              "--set", f"data.train={paths['train']}",
              "--set", f"data.validation={paths['validation']}",
              "--set", f"data.test={paths['test']}",
              "--set", f"training.time_limit_minutes={minutes!r}",
              "--set", "training.max_steps=null",
              "--set", "training.num_threads=1",
              "--set", f"training.seed={args.seed}",
              "--set", f"run_dir={workdir / 'tridft'}"]
    for option in args.tridft_set:
        tridft += ["--set", option]
    code, tasks, _ = PEERS[args.peer]
    peer = ["taskset", "-c", str(args.cores[1]), str(PEERS_VENV / "bin" / "python"),
            str(HERE / "train_peer.py"), "--code", code, "--tasks", tasks, "--recipe", "default",
            "--data", str(DATA), "--split", str(paths["split"]), "--budget", repr(budget_s),
            "--threads", "1", "--seed", str(args.seed),
            "--out", str(workdir / "peer.json"), "--model-out", str(workdir / "peer.pt")]
    return tridft, peer


def run_together(commands: dict[str, tuple[list[str], dict]], workdir: Path,
                 timeout_s: float) -> dict[str, dict]:
    """Start every command at once; wait for all; wall and CPU time of each (os.wait4)."""
    processes, started, logs = {}, {}, {}
    for name, (command, env) in commands.items():
        logs[name] = open(workdir / f"{name}.log", "w")
        started[name] = time.perf_counter()
        processes[name] = subprocess.Popen(command, env=env, stdout=logs[name],
                                           stderr=subprocess.STDOUT, cwd=workdir)
    by_pid = {process.pid: name for name, process in processes.items()}
    done: dict[str, dict] = {}
    deadline = time.perf_counter() + timeout_s
    while len(done) < len(processes):
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            if time.perf_counter() > deadline:
                for name, process in processes.items():
                    if name not in done:
                        process.kill()  # our own child, by its pid
                deadline = float("inf")
            time.sleep(0.5)
            continue
        name = by_pid.get(pid)
        if name is None:
            continue
        processes[name].returncode = os.waitstatus_to_exitcode(status)
        done[name] = {"returncode": processes[name].returncode,
                      "wall_s": round(time.perf_counter() - started[name], 1),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                      "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                      "log": str(workdir / f"{name}.log")}
    for log in logs.values():
        log.close()
    return done


def log_tail(path: str, lines: int = 15) -> list[str]:
    try:
        return Path(path).read_text().splitlines()[-lines:]
    except OSError:
        return []


def evaluate_tridft(workdir: Path, paths: dict, source: Path, core: int) -> dict:
    command = ["taskset", "-c", str(core), str(TRIDFT_PYTHON), "-c", EVALUATE_TRIDFT,
               str(workdir / "tridft" / "model.pt"), str(paths["test"])]
    completed = subprocess.run(command, env=tridft_env(source), capture_output=True, text=True,
                               check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_speed(code: str, model: Path, core: int, env: dict, python: Path, workdir: Path,
                  name: str, quick: bool, forces: str | None = None,
                  tasks: str | None = None) -> dict:
    out = workdir / f"speed-{name}.json"
    command = ["taskset", "-c", str(core), str(python), str(HERE / "speed.py"), "--code", code,
               "--model", str(model), "--ethanol", str(DATA), "--sizes", "", "--threads", "1",
               "--ethanol-batch", "10" if quick else "100",
               "--max-seconds", "1" if quick else "8", "--out", str(out)]
    if forces:
        command += ["--forces", forces]
    if tasks:
        command += ["--tasks", tasks]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0 or not out.is_file():
        return {"error": completed.stderr.strip().splitlines()[-3:]}
    ethanol = json.loads(out.read_text())["ethanol"]
    return {key: ethanol[key] for key in ("structures", "structures_per_s", "cpu_seconds",
                                          "seconds", "repeats")} | {
        "structures_per_cpu_s": ethanol["structures"] / ethanol["cpu_seconds"]}


# ---- the numbers of one model --------------------------------------------------------------


def summary_tridft(evaluated: dict, process: dict, speed: dict, n_train: int) -> dict:
    metrics, training = evaluated["metrics"], evaluated["training"]
    batch = evaluated["config"].get("training", {}).get("batch_size", 16)
    steps = training.get("total_steps", training.get("step"))
    return {
        "model": "tridft",
        "trained_on": {k: v for k, v in evaluated.get("tasks", {}).get("weights", {}).items()
                       if v > 0},
        "steps": steps, "epochs": steps * batch / n_train if steps is not None else None,
        "best_step": training.get("best_step"),
        "train_time_s": training.get("total_elapsed_s"),
        "stopped_because": training.get("stopped_because"),
        "energy_mae_meV": 1000 * metrics["energy_mae"],
        "forces_mae_meV_per_A": 1000 * metrics["direct_forces_mae"],
        "conservative_forces_mae_meV_per_A": 1000 * metrics["conservative_forces_mae"],
        "polarizability_mae_A3": metrics.get("polarizability_mae"),
        "dipole_mae_eA": metrics.get("dipole_mae"),
        "speed_direct": speed["direct"], "speed_conservative": speed["conservative"],
        "structures_per_s": speed["direct"].get("structures_per_s"),
        "structures_per_s_conservative": speed["conservative"].get("structures_per_s"),
        "process": process, "test_metrics": metrics, "training_summary": training,
    }


def summary_peer(name: str, result: dict, process: dict, speed: dict) -> dict:
    return {
        "model": name, "trained_on": result["tasks"], "steps": result["steps"],
        "epochs": result["epochs_of_data"], "best_epoch": result["best_epoch"],
        "train_time_s": result["train_time_s"],
        "stage_two_started": result.get("stage_two_started"),
        "energy_mae_meV": 1000 * result["energy_mae"] if "energy_mae" in result else None,
        "energy_mae_without_bias_meV": (1000 * result["energy_mae_without_bias"]
                                        if "energy_mae_without_bias" in result else None),
        "forces_mae_meV_per_A": 1000 * result["forces_mae"] if "forces_mae" in result else None,
        "polarizability_mae_A3": result.get("polarizability_mae"),
        "speed": speed, "structures_per_s": speed.get("structures_per_s"),
        "process": process, "result": result,
    }


def ratios(peer: dict, tridft: dict) -> dict:
    """peer MAE / tridft MAE (above 1: the peer's error is larger); forces against both of
    tridft's force estimates."""
    out = {}
    for key, against in (("energy_mae_meV", "energy_mae_meV"),
                         ("forces_mae_meV_per_A", "forces_mae_meV_per_A"),
                         ("forces_mae_meV_per_A", "conservative_forces_mae_meV_per_A"),
                         ("polarizability_mae_A3", "polarizability_mae_A3")):
        if peer.get(key) is not None and tridft.get(against):
            name = "forces_vs_conservative" if against.startswith("conservative") else \
                key.split("_mae")[0]
            out[name] = peer[key] / tridft[against]
    if peer.get("structures_per_s") and tridft.get("structures_per_s"):
        out["speed_tridft_over_peer"] = tridft["structures_per_s"] / peer["structures_per_s"]
    return out


# ---- one run -------------------------------------------------------------------------------


def run(args) -> dict:
    quick = args.quick
    budget_s = QUICK_SECONDS if quick else 60.0 * args.minutes
    sizes = SIZES["quick" if quick else "full"]
    if not (PEERS_VENV / "bin" / "python").is_file():
        raise SystemExit(f"{PEERS_VENV} does not exist: run benchmarks/setup_peers.sh")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="tridft-sbs-")) if quick else \
        ROOT / "runs" / "side_by_side" / f"{args.peer}_seed{args.seed}_{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work folder {workdir}", flush=True)
    code_state = snapshot_source(workdir / "source")
    source = workdir / "source"

    blocks = frames(DATA)
    split = make_split(len(blocks), args.seed, sizes)
    paths = write_split(blocks, split, workdir)

    tridft_command, peer_command = train_commands(args, paths, workdir, budget_s, source)
    load_before = os.getloadavg()
    print(f"training tridft (core {args.cores[0]}) and {args.peer} (core {args.cores[1]}) for "
          f"{budget_s:.0f} s", flush=True)
    processes = run_together({"tridft": (tridft_command, tridft_env(source)),
                              "peer": (peer_command, peer_env())},
                             workdir, timeout_s=2 * budget_s + 900)
    load_after = os.getloadavg()
    for name, process in processes.items():
        if process["returncode"] != 0:
            raise RuntimeError(f"{name} training failed ({process['returncode']}):\n"
                               + "\n".join(log_tail(process["log"])))

    evaluated = evaluate_tridft(workdir, paths, source, args.cores[0])
    peer_result = json.loads((workdir / "peer.json").read_text())
    code, tasks, _ = PEERS[args.peer]
    model = workdir / "tridft" / "model.pt"
    speed = {
        "direct": measure_speed("tridft", model, args.cores[0], tridft_env(source), TRIDFT_PYTHON,
                                workdir, "tridft", quick, forces="direct"),
        "conservative": measure_speed("tridft", model, args.cores[0], tridft_env(source),
                                      TRIDFT_PYTHON, workdir, "tridft_conservative", quick,
                                      forces="conservative"),
        "peer": measure_speed(code, workdir / "peer.pt", args.cores[1], peer_env(),
                              PEERS_VENV / "bin" / "python", workdir, args.peer, quick,
                              tasks=tasks),
    }
    tridft = summary_tridft(evaluated, processes["tridft"], speed, sizes[0])
    peer = summary_peer(args.peer, peer_result, processes["peer"], speed["peer"])
    shares = {"tridft": cpu_share(tridft), "peer": cpu_share(peer)}
    return {
        "peer": args.peer, "seed": args.seed, "budget_minutes": budget_s / 60.0,
        "tridft_options": list(args.tridft_set),
        "cpu_share": shares,
        "cores_quiet": all(share >= QUIET_SHARE for share in shares.values()),
        "budget_s": budget_s, "quick": quick,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split": {"seed": args.seed, "n_train": sizes[0], "n_validation": sizes[1],
                  "n_test": sizes[2], "data": str(DATA.relative_to(ROOT)),
                  "data_sha256": hashlib.sha256(DATA.read_bytes()).hexdigest()[:16],
                  "rule": "numpy.random.default_rng(seed).permutation(800): test first, "
                          "then validation, then train",
                  "test": split["test"], "validation": split["validation"]},
        "held_out": "the test structures: used by neither training nor model selection",
        "cores": {"tridft": args.cores[0], "peer": args.cores[1]}, "threads": 1,
        "commands": {"tridft": tridft_command[:5] + ["<launch>"] + tridft_command[6:],
                     "peer": peer_command},
        "load_average_before": load_before, "load_average_after": load_after,
        "cpu_free_marker_present": Path("/tmp/exp/cpu_free").exists(),
        "code": code_state, "machine": machine(), "peer_versions": peer_result["versions"],
        "workdir": str(workdir),
        "tridft": tridft, "peer_model": peer, "ratios_peer_over_tridft": ratios(peer, tridft),
    }


def append(path: Path, entry: dict) -> None:
    results = json.loads(path.read_text()) if path.is_file() else {
        "benchmark": "peers_side_by_side",
        "description": "tridft and one peer trained at the same time, each on its own core "
                       "(one torch thread), for the same wall-clock budget, on one seeded "
                       "640/80/80 split of the bundled 800 ethanol structures; metrics on the "
                       "80 test structures (benchmarks/peers/side_by_side.py)",
        "units": {"energy_mae_meV": "meV per structure", "forces_mae_meV_per_A":
                  "meV/A per component", "polarizability_mae_A3": "A^3 per component",
                  "structures_per_s": "one batch of 100 ethanol, one thread, wall"},
        "runs": []}
    results["runs"].append(entry)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(results, indent=1))
    temporary.replace(path)


# ---- the table -----------------------------------------------------------------------------


QUIET_SHARE = 0.8  # a training process with less CPU time than this share of its wall time
                   # shared its core with other work


def cpu_share(model: dict) -> float | None:
    """CPU seconds / wall seconds of the model's training process (start-up and test
    included): close to 1 on a quiet core."""
    process = model.get("process") or {}
    if not process.get("wall_s"):
        return None
    return process["cpu_s"] / process["wall_s"]


def _number(value, scale: float = 1.0, digits: int = 1) -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}"


def table(results: dict, include_quick: bool = False) -> str:
    """One row per model per run (latest run of each peer, seed and budget; quick runs only
    with ``include_quick``)."""
    latest = {}
    for entry in results.get("runs", []):
        if include_quick or not entry.get("quick"):
            options = tuple(entry.get("tridft_options", ()))
            latest[(entry["peer"], entry["seed"], entry["budget_minutes"], options)] = entry
    order = list(PEERS)
    keys = sorted(latest, key=lambda k: (k[2], k[1], order.index(k[0]) if k[0] in order else 99,
                                         k[3]))
    lines = ["| run | model | steps (epochs) | CPU-s of the training process (wall s) | "
             "energy MAE (meV) | force MAE (meV/Å) | α MAE (10⁻³ Å³) | "
             "peer / tridft (E, F, α) | structures/s (per CPU-s) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cpu(model: dict) -> str:
        process = model.get("process") or {}
        if "cpu_s" not in process:
            return "—"
        return f"{process['cpu_s']:.0f} ({process['wall_s']:.0f})"

    def speed(entry: dict) -> str:
        if not entry or entry.get("structures_per_s") is None:
            return "—"
        text = f"{entry['structures_per_s']:.0f}"
        if entry.get("structures_per_cpu_s"):
            text += f" ({entry['structures_per_cpu_s']:.0f})"
        return text

    for key in keys:
        entry = latest[key]
        t, p, r = entry["tridft"], entry["peer_model"], entry["ratios_peer_over_tridft"]
        run_name = f"{entry['budget_minutes']:g} min, seed {entry['seed']}, vs `{entry['peer']}`"
        if entry.get("tridft_options"):
            run_name += ", tridft with " + ", ".join(f"`{o}`" for o in entry["tridft_options"])
        shared = [name for name, model in (("tridft", t), ("peer", p))
                  if cpu_share(model) is not None and cpu_share(model) < QUIET_SHARE]
        if shared:
            run_name += f" — core shared ({' and '.join(shared)})"
        forces = (f"{_number(t['forces_mae_meV_per_A'])} (−dE/dR "
                  f"{_number(t['conservative_forces_mae_meV_per_A'])})")
        tridft_speed = (f"{speed(t.get('speed_direct') or t)}; −dE/dR "
                        f"{speed(t.get('speed_conservative') or {'structures_per_s': t.get('structures_per_s_conservative')})}")
        lines.append(f"| {run_name} | tridft | {t['steps']} ({t['epochs']:.1f}) | {cpu(t)} | "
                     f"{_number(t['energy_mae_meV'])} | {forces} | "
                     f"{_number(t['polarizability_mae_A3'], 1000)} | | {tridft_speed} |")
        ratio = ", ".join("—" if name not in r else f"{r[name]:.2f}×"
                          for name in ("energy", "forces", "polarizability"))
        energy = _number(p["energy_mae_meV"])
        if p.get("energy_mae_without_bias_meV") is not None:
            energy += f" ({_number(p['energy_mae_without_bias_meV'])} w/o offset)"
        label = PEERS.get(entry["peer"], (None, None, entry["peer"]))[2]
        lines.append(f"| | {label} | {p['steps']} ({p['epochs']:.1f}) | {cpu(p)} | {energy} | "
                     f"{_number(p['forces_mae_meV_per_A'])} | "
                     f"{_number(p['polarizability_mae_A3'], 1000)} | {ratio} | "
                     f"{speed(p.get('speed') or p)} |")
    return "\n".join(lines)


def update_document(document: Path, body: str, name: str = "peers_side_by_side") -> None:
    text = document.read_text()
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    if start not in text or end not in text:
        raise SystemExit(f"{document}: no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    temporary = document.with_name(f".{document.name}.tmp")
    temporary.write_text(f"{head}{start}\n{body}\n{end}{tail}")
    temporary.replace(document)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=sorted(PEERS))
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per model")
    parser.add_argument("--seed", type=int, default=0,
                        help="the split, and both models' initialisation and batch order")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_SECONDS:.0f} s budget, {SIZES['quick']} structures, "
                             "a temporary results file unless --out")
    parser.add_argument("--cores", default="%d,%d" % CORES, metavar="TRIDFT,PEER",
                        help="the cores the two trainings are pinned to (taskset -c)")
    parser.add_argument("--tridft-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a configuration option for tridft train (repeatable), e.g. "
                             "model.tensor_channels=8")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="print the markdown table")
    parser.add_argument("--update-doc", type=Path, default=None, metavar="MARKDOWN",
                        help="write the table between <!-- table:peers_side_by_side --> "
                             "markers")
    args = parser.parse_args(argv)
    args.cores = tuple(int(core) for core in args.cores.split(","))
    if len(args.cores) != 2:
        parser.error("--cores: two core numbers, e.g. 0,1")
    out = args.out or (Path(tempfile.mkdtemp(prefix="tridft-sbs-out-")) / RESULTS.name
                       if args.quick else RESULTS)
    if args.peer:
        entry = run(args)
        append(out, entry)
        print(json.dumps({"peer": entry["peer"], "seed": entry["seed"],
                          "tridft": {k: entry["tridft"][k] for k in (
                              "steps", "epochs", "energy_mae_meV", "forces_mae_meV_per_A",
                              "conservative_forces_mae_meV_per_A", "polarizability_mae_A3",
                              "structures_per_s")},
                          "peer_model": {k: entry["peer_model"][k] for k in (
                              "steps", "epochs", "energy_mae_meV", "forces_mae_meV_per_A",
                              "polarizability_mae_A3", "structures_per_s")},
                          "ratios": entry["ratios_peer_over_tridft"]}, indent=1))
        print(out)
    elif not (args.table or args.update_doc):
        parser.error("--peer (a run), --table or --update-doc")
    if args.table or args.update_doc:
        body = table(json.loads(out.read_text()), include_quick=args.quick)
        if args.table:
            print(body)
        if args.update_doc:
            update_document(args.update_doc, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
