"""``tridft data [FILE]``: read a structure file as training would, and summarise it.

The file is read with the same checks as training, so a bad file fails here with
the same one-line message (file, structure, field). Without FILE (or with the word
``default``) the bundled dataset is summarised.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Sequence

import numpy as np
from ase.data import chemical_symbols

from tridft.data.record import Record
from tridft.cli.arguments import add_command, add_data_options

DEFAULT = "default"


HELP = "check a structure file and summarise its labels"
DESCRIPTION = """Read FILE (extxyz, ASE .db, anything ase.io.read reads) with tridft's
checks and print a summary in internal units (eV, Angstrom, eV/Angstrom, Angstrom^3,
e*Angstrom)."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "data", run, HELP, DESCRIPTION)
    parser.add_argument("file", nargs="?", default=DEFAULT, metavar="FILE",
                        help="structure file; omitted or 'default': the bundled dataset")
    add_data_options(parser, keys_help="where the labels are in the file, e.g. "
                                       "energy=potential,polarizability=alpha,dipole=mu; "
                                       "extra.NAME=KEY reads a further label, LABEL=none "
                                       "skips one")


def run(args: argparse.Namespace) -> int:
    from tridft.data.io import bundled_dataset_path, read_structures
    from tridft.data.options import parse_keys, parse_units

    keys, units = parse_keys(args.keys), parse_units(args.units)
    path = bundled_dataset_path() if args.file == DEFAULT else args.file
    records = read_structures(path, keys=keys, units=units)
    print(format_summary(str(path), records))
    return 0


# --- the summary ---------------------------------------------------------------------------


def format_summary(name: str, records: Sequence[Record]) -> str:
    """A few aligned lines about ``records`` (internal units)."""
    n = len(records)
    sizes = np.array([r.n_atoms for r in records])
    lines = [
        f"{name}",
        "",
        _field("structures", f"{n} ({_periodicity(records)})"),
        _field("elements", _elements(records)),
        _field("atoms", f"{sizes.min()} min, {sizes.mean():.1f} mean, {sizes.max()} max "
                        "per structure"),
        "",
        _table(_label_rows(records), n),
    ]
    return "\n".join(lines)


def _field(name: str, value: str) -> str:
    return f"  {name:<12}{value}"


def _periodicity(records: Sequence[Record]) -> str:
    periodic = sum(r.is_periodic for r in records)
    if periodic == 0:
        return "molecules, no cell"
    if periodic == len(records):
        return "periodic cells"
    return f"{periodic} periodic, {len(records) - periodic} molecules"


def _elements(records: Sequence[Record]) -> str:
    counts = Counter()
    for record in records:
        counts.update(record.numbers.tolist())
    return ", ".join(f"{chemical_symbols[z]} {counts[z]}" for z in sorted(counts))


def _label_rows(records: Sequence[Record]) -> list[tuple[str, str, int, np.ndarray | None]]:
    """(label, unit, structures carrying it, values whose range is shown or None)."""

    def values(label, transform):
        carrying = [r for r in records if r.has(label)]
        if not carrying:
            return 0, None
        return len(carrying), np.concatenate([np.ravel(transform(r)) for r in carrying])

    def trace3(r):
        return np.trace(r.polarizability) / 3.0

    rows = [
        ("energy", "eV", *values("energy", lambda r: r.energy)),
        ("  per atom", "eV", *values("energy", lambda r: r.energy / r.n_atoms)),
        ("forces (components)", "eV/A", *values("forces", lambda r: r.forces)),
        ("polarizability (trace/3)", "A^3", *values("polarizability", trace3)),
        ("  per atom", "A^3", *values("polarizability", lambda r: trace3(r) / r.n_atoms)),
        ("dipole |mu|", "e*A", *values("dipole", lambda r: np.linalg.norm(r.dipole))),
    ]
    extra_names = sorted({name for r in records for name in (*r.extra, *r.atom_extra)})
    for name in extra_names:
        count = sum(r.has(name) for r in records)
        rows.append((f"{name} (extra)", "as in file",
                     count, np.concatenate([np.ravel(r.label(name)) for r in records
                                            if r.has(name)])))
    return rows


def _table(rows, n: int) -> str:
    header = ("label", "structures", "min", "mean", "max", "unit")
    body = []
    for label, unit, count, data in rows:
        if data is None:
            body.append((label, f"0/{n}", "-", "-", "-", unit))
        else:
            body.append((label, f"{count}/{n}", _number(data.min()), _number(data.mean()),
                         _number(data.max()), unit))
    table = [header] + body
    widths = [max(len(row[k]) for row in table) for k in range(len(header))]
    # Text columns left-aligned, numbers right-aligned.
    align = ["<", ">", ">", ">", ">", "<"]
    lines = ("  " + "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths))
             for row in table)
    return "\n".join(line.rstrip() for line in lines)


def _number(value: float) -> str:
    value = float(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.4e}"
    return f"{value:.4f}"
