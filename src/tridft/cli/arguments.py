"""Argument types and options that several subcommands share, spelled once.

    parser.add_argument("--steps", type=positive_int)
    add_model_and_structure(parser, "starting structure")   # MODEL STRUCTURE --index
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


def add_model_and_structure(parser: argparse.ArgumentParser, what: str) -> None:
    """MODEL, STRUCTURE (``what`` it is) and --index."""
    parser.add_argument("model", metavar="MODEL", help="model file (model.pt of a run)")
    parser.add_argument("structure", metavar="STRUCTURE",
                        help=f"{what} (extxyz, xyz, ASE .db, ...)")
    parser.add_argument("--index", type=int, default=0,
                        help="which structure of STRUCTURE (default: 0)")


def add_raman_geometry(parser: argparse.ArgumentParser) -> None:
    """--incident and --analyser of a 90 degree Raman experiment (tridft.md.spectra)."""
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
