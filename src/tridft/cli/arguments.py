"""Argument types and options that several subcommands share, spelled once.

    parser = add_command(subparsers, "md", run, HELP, DESCRIPTION)
    parser.add_argument("--steps", type=positive_int)
    add_model(parser)                                       # MODEL
    add_model_and_structure(parser, "starting structure")   # MODEL STRUCTURE --index
    add_output(parser, "TRAJ.extxyz", "trajectory to write", required=True)   # -o/--output
    add_data_options(parser)                                # --keys --units
    add_raman_geometry(parser)                              # --incident --analyser
    record = structure_at(args.structure, args.index)      # that structure, no labels
"""

from __future__ import annotations

import argparse


def _int_of_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a number of at least {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    return _int_of_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return _int_of_at_least(text, 0)


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def add_command(subparsers, name: str, run, help: str,
                description: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, whose handler is ``run(args) -> int``.

    ``help`` is its line in ``tridft --help``; ``description`` a paragraph (line breaks and
    runs of spaces are one space, as ``tridft NAME --help`` shows it).
    """
    parser = subparsers.add_parser(name, help=help, description=" ".join(description.split()))
    parser.set_defaults(handler=run)
    return parser


MODEL_HELP = "model file (model.pt of a run)"
TRAINED_MODEL_HELP = "trained model file"


def add_model(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    """The positional MODEL."""
    parser.add_argument("model", metavar="MODEL", help=help)


def add_model_and_structure(parser: argparse.ArgumentParser, what: str) -> None:
    """MODEL, STRUCTURE (``what`` it is) and --index."""
    add_model(parser)
    parser.add_argument("structure", metavar="STRUCTURE",
                        help=f"{what} (extxyz, xyz, ASE .db, ...)")
    parser.add_argument("--index", type=int, default=0,
                        help="which structure of STRUCTURE (default: 0)")


def add_output(parser: argparse.ArgumentParser, metavar: str, help: str, *,
               required: bool = False, default: str | None = None) -> None:
    """-o/--output, the file (or prefix) a command writes."""
    parser.add_argument("-o", "--output", required=required, default=default, metavar=metavar,
                        help=help)


def add_data_options(parser: argparse.ArgumentParser,
                     keys_help: str = "label names in the file, e.g. "
                                      "energy=potential,polarizability=alpha,dipole=mu") -> None:
    """--keys and --units, as every command that reads labelled structure files spells them."""
    parser.add_argument("--keys", metavar="LABEL=KEY,...", help=keys_help)
    add_units(parser, "units of the file, e.g. "
                      "energy=Hartree,length=bohr,polarizability=bohr^3,dipole=e*bohr")


def add_units(parser: argparse.ArgumentParser, help: str) -> None:
    """--units QUANTITY=UNIT,... of the structure files read."""
    parser.add_argument("--units", metavar="QUANTITY=UNIT,...", help=help)


def add_model_run_options(parser: argparse.ArgumentParser) -> None:
    """--forces and --batch-size of a model run over a file (evaluate and predict)."""
    parser.add_argument("--forces", choices=("direct", "conservative"), default=None,
                        help="direct force head (fast) or -dE/dR of the energy head "
                             "(default: the forces the model was trained for)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                        help="structures per batch (default: 64)")


def add_seed(parser, help: str | None = "random seed (default: 0)") -> None:
    """--seed, 0 by default."""
    parser.add_argument("--seed", type=int, default=0, help=help)


def add_no_progress(parser) -> None:
    """--no-progress (``args.no_progress``)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_raman_geometry(parser: argparse.ArgumentParser) -> None:
    """--incident and --analyser of a 90 degree Raman experiment (tridft.spectra.correlation)."""
    parser.add_argument("--incident", choices=("linear", "natural"), default="linear",
                        help="polarisation of the exciting light (default: linear, a laser)")
    parser.add_argument("--analyser", choices=("total", "parallel", "perpendicular"),
                        default="total",
                        help="polarisation of the scattered light at 90 degrees: parallel "
                             "(out of the scattering plane), perpendicular (in it) or total "
                             "(default); linear + total is the Raman activity 45 a^2 + 7 g^2")


def structure_at(path: str, index: int):
    """The geometry (a Record without labels) of structure ``index`` of ``path``."""
    from tridft.data.io import KeyMap, read_structures
    from tridft.errors import InputError

    no_labels = KeyMap(energy=None, forces=None, polarizability=None, dipole=None)
    records = read_structures(path, keys=no_labels)
    if not -len(records) <= index < len(records):
        raise InputError(f"--index {index}: the file has {len(records)} structure(s)",
                         path=path)
    return records[index]
