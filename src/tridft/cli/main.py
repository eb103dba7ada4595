"""The ``tridft`` command: one small module per subcommand, each a thin layer over the library.

A subcommand module defines ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function ``run(args) -> int`` (``tridft.cli.arguments.add_command``
does both from the module's ``HELP`` and ``DESCRIPTION``); the options that several
subcommands share are spelled once in ``tridft.cli.arguments``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from tridft.allocator import keep_freed_memory
from tridft.errors import TriDFTError

# Subcommand modules under tridft.cli, in the order `tridft --help` lists them.
SUBCOMMANDS = ["demo", "data", "train", "evaluate", "predict", "info", "calibrate", "export",
               "md", "vibrations", "spectrum", "label", "sample", "finetune", "inspect"]


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
    keep_freed_memory()
    previous = _stop_cleanly_on_sigterm()
    try:
        return int(args.handler(args) or 0)
    except TriDFTError as error:
        if args.debug:
            raise
        return _error(args.command, str(error))
    except OSError as error:  # the file system or the machine: one line, not a traceback
        if args.debug:
            raise
        return _error(args.command, _describe_os_error(error))
    except MemoryError:
        if args.debug:
            raise
        return _error(args.command, "out of memory (try a smaller --batch-size or input)")
    except KeyboardInterrupt:
        print(f"tridft {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _error(command: str, message: str) -> int:
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"tridft {command}: error: {message}", file=sys.stderr)
    return 1


def _describe_os_error(error: OSError) -> str:
    """'PATH: No space left on device' (both paths of a rename)."""
    reason = error.strerror or str(error) or type(error).__name__
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def _stop_cleanly_on_sigterm():
    """SIGTERM (kill, a batch system's time limit) ends the command like Ctrl-C: files being
    written are removed and the run folder's lock released, instead of an abrupt death.
    Returns the previous handler (None when not in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, OSError):
        return None


if __name__ == "__main__":
    sys.exit(main())
