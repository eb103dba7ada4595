"""The ``tridft`` command: one small module per subcommand, each a thin layer over the library.

A subcommand module defines ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from tridft.errors import TriDFTError

# Subcommand modules under tridft.cli, in the order `tridft --help` lists them.
SUBCOMMANDS = ["demo", "data", "train", "evaluate", "predict", "info", "md", "spectrum",
               "label", "sample", "finetune", "inspect"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tridft",
        description="Energies, forces and polarizabilities from one machine-learned model.")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"tridft.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"tridft.cli.{name}":
                continue  # subcommand not part of this installation
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except TriDFTError as error:
        if args.debug:
            raise
        print(f"tridft {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tridft {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
