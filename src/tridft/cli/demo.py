"""``tridft demo``: train the default model on the bundled ethanol set, report on its test split.

The whole pipeline in a few minutes on a laptop CPU: read the 800 bundled ethanol
structures (PBE/def2-SVP energies, forces, polarizabilities), split them 80/10/10
(seed 0), train the default model for ``--minutes``, evaluate the best model on the
test split, and write model.pt, metrics.json, report.md and plots into ``--out``.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from tridft.cli.arguments import add_command


DEFAULT_OUT = "runs/demo"
DEFAULT_MINUTES = 4.0  # of training; reading, evaluation and plots add about half a minute

DEMO_LOGGING = {"validate_every": 100, "gradient_cosine_every": 100, "log_every": 10}

# --quick: seconds of training of a smaller model on a few dozen structures, to check that
# everything runs (the end-to-end test uses it).
QUICK_SETTINGS = {
    "data": {"max_structures": 40},
    "model": {"features": 16, "layers": 2, "head_hidden": 16},
    "training": {"max_steps": 20, "batch_size": 8, "warmup_steps": 5, "log_every": 5,
                 "validate_every": 10, "gradient_cosine_every": 10, "checkpoint_every": 1000},
    "loss": {"kl_warmup_steps": 10},
}
QUICK_STEPS = QUICK_SETTINGS["training"]["max_steps"]


def minutes(text: str) -> float:
    """argparse type: a positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of minutes, got {text}")
    return value


HELP = "train and evaluate the default model on the bundled ethanol data"
DESCRIPTION = """Train the default model on the bundled ethanol dataset (80/10/10 split,
seed 0) for a few minutes, evaluate it on the test split, and write the model, metrics, a
report and plots."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "demo", run, HELP, DESCRIPTION)
    parser.add_argument("--minutes", type=minutes, default=DEFAULT_MINUTES,
                        metavar="M", help=f"training time (default: {DEFAULT_MINUTES:g})")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"run folder (default: {DEFAULT_OUT}; an earlier demo there is "
                             "replaced)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_STEPS} steps of a smaller model on 40 structures "
                             "(a smoke test)")


def demo_config(out: str, minutes: float, quick: bool = False):
    """The TrainConfig of the demo: the training defaults with a time limit."""
    from tridft.train.config import config_from_dict

    values = {
        "run_dir": str(out),
        "data": {"train": None, "split": {"validation": 0.1, "test": 0.1, "seed": 0}},
        # The clock, not a step count, ends the demo (the cosine schedule follows it), and
        # validation and gradient cosines come more often than the defaults, so that the
        # demo's curves have points to show.
        "training": {"time_limit_minutes": minutes, "max_steps": None, **DEMO_LOGGING},
    }
    if quick:
        for section, settings in QUICK_SETTINGS.items():
            values[section] = {**values.get(section, {}), **settings}
    return config_from_dict(values, source="tridft demo")


def run(args: argparse.Namespace) -> int:
    from tridft.errors import TriDFTError
    from tridft.extras import require_matplotlib
    from tridft.report.run_report import write_run_report
    from tridft.report.summary import format_table
    from tridft.train.loop import train

    require_matplotlib("the demo's plots")  # before minutes of training
    started = time.monotonic()
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise TriDFTError(f"--out {args.out}: exists and is not a folder")
    config = demo_config(args.out, args.minutes, args.quick)
    limit = f"{QUICK_STEPS} steps" if args.quick else f"up to {args.minutes:g} minutes"
    print(f"Training the default model on the bundled ethanol data for {limit} "
          f"(run folder {config.run_dir}) ...", flush=True)
    # A demo folder of an earlier demo (it has the run's config.yaml) is the demo's own.
    earlier_demo = (Path(args.out) / "config.yaml").is_file() \
        and (Path(args.out) / "report.md").is_file()
    result = train(config, progress=True, overwrite=earlier_demo)
    print(f"trained {result.steps} steps in {result.elapsed_s:.0f} s "
          f"(stopped by {result.stopped_because.replace('_', ' ')})")

    force_source = config.training.force_source
    report = write_run_report(result.run_dir, forces=force_source, title="tridft demo: ethanol")
    n_test = report.metrics["n_structures"]
    print()
    print(format_table(report.metrics, title=f"best model on the test split ({n_test} "
                                             f"structures, {force_source} forces)"))
    print()
    run_dir = Path(result.run_dir)
    print(f"wrote {run_dir}/: model.pt, metrics.json, report.md, test.extxyz, plots/ "
          f"({time.monotonic() - started:.0f} s in all)")
    print()
    print("next:")
    for command in next_commands(run_dir, report.test_file):
        print(f"  {command}")
    return 0


def next_commands(run_dir: Path, test_file: Path | None) -> list[str]:
    """What to try with the demo model, with the real paths."""
    model = shlex.quote(str(run_dir / "model.pt"))
    data = shlex.quote(str(test_file)) if test_file is not None else "DATA.extxyz"
    trajectory = shlex.quote(str(run_dir / "md.extxyz"))
    predictions = shlex.quote(str(run_dir / "predictions.extxyz"))
    return [
        f"tridft info {model}",
        f"tridft evaluate {model} {data} --plots {shlex.quote(str(run_dir / 'plots'))}",
        f"tridft predict {model} {data} -o {predictions}",
        f"tridft md {model} {data} -o {trajectory} --steps 4000",
        f"tridft spectrum {trajectory}",
    ]
