"""Inference speed and peak memory of one trained model, in a process of its own.

    python benchmarks/peers/speed.py --code mace --model m.pt --ethanol DATA --water DATA \
        --sizes 192,1536,12288 --out speed.json

Run with the interpreter of the code's environment (tridft: .venv, peers:
.venv-peers). What is timed: from ase.Atoms to predictions, the code's own
neighbour list and batching included (featurize + collate + forward with
forces), as wall time and as CPU time of the process (with one torch thread the
CPU time is the compute, hardly changed by other processes on shared cores,
while the wall time grows with them). Sizes run in increasing order in one process, and the peak memory
after each size is the process's maximum resident set so far (VmHWM): the
largest system so far, the Python/torch runtime and the model included; the
resident set before the first system is reported as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: tridft-free helpers
from measure import peak_rss_mb, time_calls  # noqa: E402
from structures import read_labelled  # noqa: E402
from water import WATER_REPEATS, water_box  # noqa: E402


def load(code: str, model_path: str, forces: str, tasks: tuple[str, ...]):
    if code == "tridft":
        from adapters import TriDFTAdapter

        adapter = TriDFTAdapter(model_path, forces=forces)
        return adapter, adapter.model
    import compat  # noqa: F401
    from adapters import make_adapter

    model = torch.load(model_path, weights_only=False)  # our own file (train_peer.py)
    adapter = make_adapter(code, tasks)
    model.eval()
    return adapter, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", choices=("tridft", "schnetpack", "mace"), required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--forces", default="direct", help="tridft only: direct|conservative")
    parser.add_argument("--tasks", default="energy,forces", help="peers: the model's outputs")
    parser.add_argument("--ethanol", required=True, help="extxyz of ethanol structures")
    parser.add_argument("--ethanol-batch", type=int, default=100)
    parser.add_argument("--water", help="extxyz whose first frame is the 192-atom cell "
                                         "(needed when --sizes names any)")
    parser.add_argument("--sizes", default="192,384,768,1536,3072,6144,12288",
                        help="water box sizes (atoms); empty: ethanol only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    baseline = peak_rss_mb()
    adapter, model = load(args.code, args.model, args.forces, tuple(args.tasks.split(",")))
    model_rss = peak_rss_mb()
    result = {"code": args.code, "forces": args.forces if args.code == "tridft" else "autograd",
              "threads": args.threads, "settings": adapter.settings,
              "rss_before_model_mb": baseline, "rss_with_model_mb": model_rss,
              "ethanol": None, "water": []}

    def predict(atoms_list):
        def run():
            items = [adapter.featurize(atoms) for atoms in atoms_list]
            with torch.inference_mode(False):
                output = adapter.predict(model, adapter.collate(items), training=False)
            return {k: v.detach() for k, v in output.items() if isinstance(v, torch.Tensor)}
        return run

    ethanol = [s.atoms for s in read_labelled(args.ethanol)[:args.ethanol_batch]]
    times, cpu_times = time_calls(predict(ethanol), 3, warmup=1,
                                  max_seconds=args.max_seconds)
    seconds = statistics.median(times)
    n_atoms = sum(len(a) for a in ethanol)
    result["ethanol"] = {"structures": len(ethanol), "atoms": n_atoms, "seconds": seconds,
                         "structures_per_s": len(ethanol) / seconds,
                         "atoms_per_s": n_atoms / seconds, "repeats": len(times), "times": times,
                         "cpu_seconds": statistics.median(cpu_times),
                         "peak_rss_mb": peak_rss_mb()}
    write(result, args.out)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if sizes and not args.water:
        parser.error("--water is needed for the water box sizes")
    for size in sizes:
        box = water_box(args.water, WATER_REPEATS[size])
        times, cpu_times = time_calls(predict([box]), 1 if size >= 3072 else 3,
                                      warmup=int(size < 3072), max_seconds=args.max_seconds)
        seconds = statistics.median(times)
        result["water"].append({"atoms": len(box), "seconds": seconds,
                                "atoms_per_s": len(box) / seconds, "repeats": len(times),
                                "times": times, "cpu_seconds": statistics.median(cpu_times),
                                "peak_rss_mb": peak_rss_mb()})
        write(result, args.out)  # partial results survive a kill (memory, time)
        print(f"{args.code} water {len(box)} atoms: {seconds:.3f} s, "
              f"peak {peak_rss_mb():.0f} MB", flush=True)
    return 0


def write(result: dict, path: str) -> None:
    temporary = f"{path}.tmp"
    Path(temporary).write_text(json.dumps(result, indent=1))
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main())
