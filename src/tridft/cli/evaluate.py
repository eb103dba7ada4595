"""``tridft evaluate MODEL DATA``: metrics of a model on labelled structures.

Prints a table (internal units) and optionally writes the metrics as JSON and the
parity plots and error histograms as PNG files.
"""

from __future__ import annotations

import argparse
import logging

from tridft.cli.arguments import add_command, add_data_options, add_model, add_model_run_options

logger = logging.getLogger(__name__)


HELP = "metrics of a model on labelled structures"
DESCRIPTION = """Compare a model's energies, forces and polarizabilities with the labels of
DATA. Metrics of labels that DATA does not carry, or that the model has no head for, are
left out; the consistency |F_direct + dE/dR| is reported for models with energy and force
heads."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "evaluate", run, HELP, DESCRIPTION)
    add_model(parser)
    parser.add_argument("data", metavar="DATA", help="labelled structures (extxyz, ASE .db, ...)")
    parser.add_argument("--json", metavar="OUT.json", help="write the metrics as JSON")
    parser.add_argument("--plots", metavar="DIR",
                        help="write parity plots and error histograms into DIR")
    add_model_run_options(parser)
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    from tridft.data.domain import DomainCheck
    from tridft.data.io import read_structures
    from tridft.data.options import parse_keys, parse_units
    from tridft.data.unit_hint import unit_hints
    from tridft.extras import require_matplotlib
    from tridft.files import write_json_atomic
    from tridft.model.persistence import load_model, trained_force_source
    from tridft.outputs import check_outputs
    from tridft.report.summary import format_table
    from tridft.train.evaluate import evaluate_and_compare

    keys, units = parse_keys(args.keys), parse_units(args.units)  # option errors first
    if args.plots:
        require_matplotlib("--plots")
    check_outputs({"--json": args.json}, inputs={"MODEL": args.model, "DATA": args.data},
                  folders={"--plots": args.plots})
    model = load_model(args.model)
    args.forces = args.forces or trained_force_source(model)
    records = read_structures(args.data, keys=keys, units=units)
    domain = DomainCheck.for_model(model, args.data)
    domain.structures(records)
    metrics, pairs = evaluate_and_compare(model, records, forces=args.forces,
                                          batch_size=args.batch_size, check=domain)
    domain.report()
    for hint in unit_hints(model.metadata.get("stats"), records, str(args.data)):
        logger.warning(hint)
    forces = f" ({args.forces} forces)" if {"energy", "forces"} & set(model.heads) else ""
    print(format_table(metrics, title=f"{args.model} on {args.data}{forces}"))
    if args.json:
        write_json_atomic(args.json, {**metrics, "force_source": args.forces,
                                      "model": str(args.model), "data": str(args.data)})
        print(f"metrics written to {args.json}")
    if args.plots:
        from tridft.report.plots import write_plots

        for path in write_plots(args.plots, pairs=pairs).values():
            print(f"plot written to {path}")
    return 0
