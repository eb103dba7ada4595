"""``tridft calibrate MODEL``: fit (or refit) the model's uncertainty calibration.

Training ends with this step on its own; the command is for models trained before,
or to calibrate on other data. The LLPR covariance comes from the training
structures, the scales from the validation structures (tridft.uncertainty.calibrate,
docs/uncertainty.md). By default both are the run's own splits: the data file and
split.json of the run folder that holds MODEL (the training file recorded in the
model, or the bundled dataset). ``--train`` and ``--validation`` take other files.
The calibration is saved into MODEL (or ``-o``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tridft.cli.arguments import add_command, add_model, add_output


HELP = "fit the model's uncertainty calibration (LLPR) on its data"
DESCRIPTION = """Fit the last-layer uncertainty of MODEL on training structures and
calibrate it on validation structures; save it with the model."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "calibrate", run, HELP, DESCRIPTION)
    add_model(parser)
    parser.add_argument("--train", metavar="DATA", default=None,
                        help="training structures (default: the run's training split)")
    parser.add_argument("--validation", metavar="DATA", default=None,
                        help="labelled validation structures (default: the run's split)")
    add_output(parser, "OUT.pt", "where to write the calibrated model (default: MODEL itself)")


def run(args: argparse.Namespace) -> int:
    from tridft.data.io import read_structures
    from tridft.model.persistence import load_model, save_model
    from tridft.outputs import check_outputs
    from tridft.uncertainty.calibrate import fit_uncertainty

    output = args.output or args.model
    if args.output:
        check_outputs({"-o": args.output}, inputs={"MODEL": args.model, "--train": args.train,
                                                  "--validation": args.validation})
    model = load_model(args.model)
    train = read_structures(args.train) if args.train else _run_split(args.model, model, "train")
    validation = read_structures(args.validation) if args.validation \
        else _run_split(args.model, model, "validation")
    model.uncertainty = fit_uncertainty(model, train, validation)
    save_model(model, output, metadata=model.metadata)
    print(f"uncertainty calibrated on {len(train)} training and {len(validation)} validation "
          f"structures, saved to {output}")
    for name, report in model.uncertainty.report.items():
        print(f"  {name}: scale alpha^2 {report['scale']:.3g}, regulariser "
              f"{report['regularizer_relative']:.0e}, disagreement weight "
              f"{report['disagreement']:.3g}, validation NLL {report['validation_nll']:.3f}")
    return 0


def _run_split(model_path: str, model, which: str) -> list:
    """The records of split ``which`` of the run that saved ``model_path``."""
    from tridft.data.io import bundled_dataset_path
    from tridft.report.run_report import RunSplit, run_split

    metadata = getattr(model, "metadata", {}) or {}
    split = run_split(Path(model_path).parent, metadata, which)
    if which == "train":  # the training file is split; its part is in split.json
        from tridft.data.splits import Splits

        sources = metadata.get("data", {}) or {}
        split_file = Path(model_path).parent / "split.json"
        splits = Splits.load(split_file) if split_file.is_file() \
            else Splits.from_dict(metadata.get("split", {}), path=str(model_path))
        source = Path(sources["train"]) if sources.get("train") else bundled_dataset_path()
        split = RunSplit(source, list(splits.train), splits.n, split.keys, split.units)
    return split.read()[0]
