"""``tridft train CONFIG.yaml [--set key.path=value ...] [--resume | --overwrite]``.

Trains a model as the configuration says (see configs/ethanol.yaml and
docs/training.md) and prints where the run went and its best validation metrics.
Under ``torchrun`` every process runs this command; rank 0 prints.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import add_command, add_no_progress
from tridft.train.progress import format_metrics


HELP = "train a model from a YAML configuration"
DESCRIPTION = """Train a model on every label of the data (energies, forces,
polarizabilities, dipoles, further labels in data.keys). Every key of CONFIG can be changed
from the command line with --set, e.g. --set training.lr=1e-3 --set
loss.balancing=uncertainty."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "train", run, HELP, DESCRIPTION)
    parser.add_argument("config", metavar="CONFIG.yaml", nargs="?",
                        help="training configuration (default: the built-in defaults, "
                             "ethanol from the bundled dataset)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY.PATH=VALUE", help="override one configuration key "
                                                       "(repeatable; VALUE is read as YAML)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in run_dir from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in a run_dir that holds files of an earlier run "
                             "(model.pt, checkpoint.pt, metrics.csv, ...), replacing them")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    from tridft.train.config import load_config
    from tridft.train.loop import train

    config = load_config(args.config, args.overrides)  # ConfigError before any work
    result = train(config, resume=args.resume, progress=not args.no_progress,
                   overwrite=args.overwrite)
    if not _is_rank_zero():
        return 0
    print(f"run:        {result.run_dir}")
    print(f"model:      {result.best_model_path}")
    print(f"steps:      {result.steps} ({result.epochs} epochs, {result.elapsed_s:.0f} s, "
          f"stopped by {result.stopped_because.replace('_', ' ')})")
    print("trained:    " + ", ".join(f"{task} (weight {weight:g})"
                                     for task, weight in result.tasks.items()))
    for title, metrics in (("validation", result.metrics), ("test", result.test_metrics)):
        if metrics:
            print(f"{title + ':':<11} {format_metrics(metrics)}")
    return 0


def _is_rank_zero() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
