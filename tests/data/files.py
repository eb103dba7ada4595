"""Files for the data tests: the reference data in ../shared/data and small bad files.

``BAD_INPUTS`` lists one small extxyz text per problem that reading must reject,
with where the error must point (structure index, field) and a fragment of the
message. The io tests and the CLI tests both run through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a reference file; skips the test when the shared data is not on this machine."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"reference data {path} not available")
    return path


def frame(atoms: list[tuple[str, float, float, float]], info: str = "",
          properties: str = "species:S:1:pos:R:3", extra_columns=None) -> str:
    """One extxyz frame: atoms are (symbol, x, y, z); extra_columns add per-atom values."""
    lines = [str(len(atoms)), f"Properties={properties} {info}".strip()]
    for k, (symbol, x, y, z) in enumerate(atoms):
        columns = " ".join(str(v) for v in extra_columns[k]) if extra_columns else ""
        lines.append(f"{symbol} {x} {y} {z} {columns}".rstrip())
    return "\n".join(lines) + "\n"


WATER = [("O", 0.0, 0.0, 0.0), ("H", 0.96, 0.0, 0.0), ("H", -0.24, 0.93, 0.0)]
GOOD = frame(WATER, 'energy=-2080.5 polarizability="1 0 0 0 1 0 0 0 1"')
FORCES = "species:S:1:pos:R:3:forces:R:3"
CUBE = 'Lattice="3.0 0 0 0 3.0 0 0 0 3.0" pbc="T T T"'


@dataclass(frozen=True)
class BadInput:
    text: str
    index: int | None  # structure the message must name (None: the file as a whole)
    field: str | None  # field the message must name
    fragment: str  # words the message must contain


BAD_INPUTS = {
    "truncated": BadInput(GOOD + GOOD + "3\nProperties=species:S:1:pos:R:3\nO 0 0 0\n",
                          2, None, "expected 3"),
    "garbage": BadInput("this is not a structure file\n", 0, None, "cannot read"),
    "forces_shape": BadInput(
        GOOD + frame(WATER, "energy=1.0", "species:S:1:pos:R:3:forces:R:2",
                     [(0, 0)] * 3), 1, "forces", "expected shape (3, 3)"),
    "polarizability_6": BadInput(frame(WATER, 'polarizability="1 2 3 4 5 6"'), 0,
                                 "polarizability", "9 numbers"),
    "nan_energy": BadInput(GOOD + frame(WATER, "energy=nan"), 1, "energy", "NaN"),
    "nan_forces": BadInput(frame(WATER, "energy=1.0", FORCES, [(0, 0, 0), (0, "nan", 0),
                                                               (0, 0, 0)]),
                           0, "forces", "NaN"),
    "inf_position": BadInput(frame([("O", 0, 0, 0), ("H", 1, 0, "inf")]), 0, "positions",
                             "infinite"),
    "nan_polarizability": BadInput(frame(WATER, 'polarizability="1 0 0 0 nan 0 0 0 1"'), 0,
                                   "polarizability", "NaN"),
    "close_atoms": BadInput(GOOD + GOOD + frame([("O", 0, 0, 0), ("H", 0.05, 0, 0)]), 2,
                            "positions", "closer than 0.1"),
    "close_periodic_image": BadInput(
        frame([("O", 0.02, 1.5, 1.5), ("H", 2.97, 1.5, 1.5)], CUBE), 0, "positions",
        "periodic image"),
    "empty": BadInput(GOOD + "0\nProperties=species:S:1:pos:R:3 energy=1.0\n", 1, "numbers",
                      "empty"),
    "unknown_symbol": BadInput(GOOD + frame([("Xx", 0, 0, 0), ("H", 1, 0, 0)]), 1, "species",
                               "unknown element symbol 'Xx'"),
    "atomic_number_0": BadInput(frame([("X", 0, 0, 0), ("H", 1, 0, 0)]), 0, "numbers",
                                "atomic number 0"),
    "singular_cell": BadInput(
        frame(WATER, 'Lattice="3 0 0 0 3 0 6 6 0" pbc="T T T"'), 0, "cell", "singular"),
    "asymmetric_polarizability": BadInput(
        frame(WATER, 'polarizability="1 0.5 0 0 1 0 0 0 1"'), 0, "polarizability",
        "not symmetric"),
}


def write_bad(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.extxyz"
    path.write_text(BAD_INPUTS[name].text)
    return path
