"""``tridft evaluate MODEL DATA``: metrics of a model on labelled structures.

Prints a table (internal units) and optionally writes the metrics as JSON and the
parity plots and error histograms as PNG files.
"""

from __future__ import annotations

import argparse
import logging

from tridft.cli.arguments import positive_int

logger = logging.getLogger(__name__)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--keys and --units, as every command that reads structure files spells them."""
    parser.add_argument("--keys", metavar="LABEL=KEY,...",
                        help="label names in the file, e.g. "
                             "energy=potential,polarizability=alpha,dipole=mu")
    parser.add_argument("--units", metavar="QUANTITY=UNIT,...",
                        help="units of the file, e.g. "
                             "energy=Hartree,length=bohr,polarizability=bohr^3,dipole=e*bohr")


def add_model_run_options(parser: argparse.ArgumentParser) -> None:
    """--forces and --batch-size, shared by evaluate and predict."""
    parser.add_argument("--forces", choices=("direct", "conservative"), default=None,
                        help="direct force head (fast) or -dE/dR of the energy head "
                             "(default: the forces the model was trained for)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                        help="structures per batch (default: 64)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="metrics of a model on labelled structures",
        description="Compare a model's energies, forces and polarizabilities with the labels "
                    "of DATA. Metrics of labels that DATA does not carry, or that the model "
                    "has no head for, are left out; the consistency |F_direct + dE/dR| is "
                    "reported for models with energy and force heads.")
    parser.add_argument("model", metavar="MODEL", help="model file (model.pt of a run)")
    parser.add_argument("data", metavar="DATA", help="labelled structures (extxyz, ASE .db, ...)")
    parser.add_argument("--json", metavar="OUT.json", help="write the metrics as JSON")
    parser.add_argument("--plots", metavar="DIR",
                        help="write parity plots and error histograms into DIR")
    add_model_run_options(parser)
    add_data_options(parser)
    parser.set_defaults(handler=run)


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
