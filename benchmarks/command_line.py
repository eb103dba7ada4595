"""The command line every training benchmark shares: options, output path, logging."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from paths import RESULTS


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (seconds) with the same output schema")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default docs/results/<benchmark>.json; "
                             "--quick: a temporary folder)")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore runs already in the results file")
    parser.add_argument("--keep-runs", type=Path, default=None,
                        help="keep every run directory under this folder")
    return parser


def output_path(args, benchmark: str) -> Path:
    if args.out is not None:
        return args.out
    if args.quick:
        return Path(tempfile.gettempdir()) / f"tridft-{benchmark}-quick.json"
    return RESULTS / f"{benchmark}.json"


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("tridft").setLevel(logging.WARNING)
