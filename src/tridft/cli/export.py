"""``tridft export MODEL -o model.ts``: the model as a TorchScript program that runs without tridft.

The program takes one structure (positions, numbers, cell, pbc), builds its
neighbour list, and returns energy, direct and conservative forces, stress and
polarizability (and any further head); see tridft.export.torchscript and
docs/export.md. Before writing, the program is checked against the Python model on
a molecule and a periodic cell; the largest relative deviations are printed.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import add_command, add_model, add_output


HELP = "write the model as a TorchScript program (torch.jit.load, no tridft)"
DESCRIPTION = """Write MODEL as a TorchScript file that torch.jit.load can run in a process
without tridft: energy, forces, stress and polarizability of one structure from its
positions, atomic numbers, cell and pbc."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "export", run, HELP, DESCRIPTION)
    add_model(parser)
    add_output(parser, "MODEL.ts", "TorchScript file to write", required=True)
    parser.add_argument("--no-check", action="store_true",
                        help="skip the comparison with the Python model")


def run(args: argparse.Namespace) -> int:
    from tridft.export.torchscript import export_model
    from tridft.model.persistence import load_model
    from tridft.outputs import check_outputs

    check_outputs({"-o": args.output}, inputs={"MODEL": args.model})
    model = load_model(args.model)
    deviations = export_model(model, args.output, check=not args.no_check)
    print(f"TorchScript program written to {args.output} (cutoff {model.cutoff:g} A, "
          f"outputs: {', '.join(list(model.heads) + ['conservative_forces', 'stress'])})")
    if deviations:
        print("  largest relative deviation from the Python model: "
              + ", ".join(f"{name} {value:.1e}" for name, value in deviations.items()))
    print("  load it with torch.jit.load; inputs and units: docs/export.md")
    return 0
