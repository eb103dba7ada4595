"""``tridft inspect MODEL DATA [--structure K] [-o PREFIX]``: what the latent carries.

Prints the information (mean KL, nats per atom) of every scalar latent channel and
a channels x heads table of how much each head changes when the channel is ablated;
writes PREFIX.json, PREFIX.png (KL bar chart and attribution heat map) and
PREFIX_atoms.extxyz (structure K with per-atom energies and polarizabilities, for
any ASE viewer). See tridft.transfer.inspect.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import (TRAINED_MODEL_HELP, add_command, add_model, add_output, add_units,
                                  positive_int)
from tridft.extras import require_matplotlib


HELP = "latent information per channel, head attribution, per-atom terms"
DESCRIPTION = """Show how much information each latent channel carries over DATA, which
heads use which channels, and the per-atom energies and polarizabilities of one
structure."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "inspect", run, HELP, DESCRIPTION)
    add_model(parser, TRAINED_MODEL_HELP)
    parser.add_argument("data", metavar="DATA", help="structures (labels are not needed)")
    parser.add_argument("--structure", type=int, default=0, metavar="K",
                        help="structure of DATA (0-based) for the per-atom contributions "
                             "(default 0)")
    parser.add_argument("--max-structures", type=positive_int, default=1000, metavar="N",
                        help="use at most the first N structures of DATA (default 1000)")
    add_units(parser, "units of DATA, e.g. length=bohr")
    add_output(parser, "OUT_PREFIX", "prefix of the files written (default: inspect)",
               default="inspect")


def run(args: argparse.Namespace) -> int:
    require_matplotlib("the latent plot (OUT_PREFIX.png)")  # before any work
    from tridft.data.io import KeyMap, read_structures
    from tridft.data.options import parse_units
    from tridft.errors import InputError
    from tridft.model.persistence import load_model
    from pathlib import Path

    from tridft.data.domain import DomainCheck
    from tridft.outputs import check_outputs
    from tridft.transfer.inspect import atomic_contributions, inspect_latent, write_inspection

    units = parse_units(args.units)
    prefix = Path(args.output)
    check_outputs({f"-o ({suffix})": prefix.with_name(prefix.name + suffix)
                   for suffix in (".json", ".png", "_atoms.extxyz")},
                  inputs={"MODEL": args.model, "DATA": args.data})
    model = load_model(args.model)
    geometry_only = KeyMap(energy=None, forces=None, polarizability=None, dipole=None)
    records = read_structures(args.data, keys=geometry_only, units=units)
    if not 0 <= args.structure < len(records):
        raise InputError(f"--structure {args.structure} is outside 0..{len(records) - 1}",
                         path=str(args.data))
    domain = DomainCheck.for_model(model, args.data)
    domain.structures(records[:args.max_structures])
    domain.report()
    report = inspect_latent(model, records[:args.max_structures])
    atoms = atomic_contributions(model, records[args.structure])

    print(f"latent of {args.model} over {report.n_structures} structures of {args.data}")
    print("KL: mean information per atom (nats); columns: mean |change| of each head when the "
          "channel is ablated, relative to the head's spread over the data")
    print(report.table())
    unused = report.unused_channels()
    if not report.variational:
        print("the latent is not variational: KL is not defined (shown as 0)")
    elif unused:
        print(f"unused channels (KL < 0.01 nats): {', '.join(unused)}")
    for path in write_inspection(report, atoms, args.output):
        print(f"written: {path}")
    return 0
