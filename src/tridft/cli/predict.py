"""``tridft predict MODEL DATA -o OUT.extxyz``: a model's predictions for every structure.

The output holds the structures of DATA with the predictions under tridft's keys, in
internal units: ``energy`` (info, eV), ``forces`` (arrays, eV/Angstrom),
``polarizability`` (info, 9 numbers row-major, Angstrom^3) and every further head
under its own name (``dipole`` in info, e*Angstrom; per-atom heads in arrays).
Labels in DATA are not copied: the file holds predictions only. The energy of a
composition that the model's reference energies do not determine (methanol for a
model of ethanol) is refused; ``--no-energy`` predicts everything else.

``--stress`` adds ``stress`` (info, 9 numbers row-major, eV/Angstrom^3, ASE's sign:
pressure = -trace/3) for periodic structures. ``--uncertainty`` adds the model's
calibrated uncertainties, predicted standard deviations (docs/uncertainty.md):
``energy_uncertainty`` (info, eV), ``forces_uncertainty`` (arrays, one number per
atom, eV/Angstrom), ``forces_uncertainty_max`` (info, its largest atom, eV/Angstrom)
and ``polarizability_uncertainty`` (info, Angstrom^3).
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np

from tridft.cli.arguments import (add_command, add_data_options, add_model, add_model_run_options,
                                  add_output)


HELP = "predict energies, forces and polarizabilities into an extxyz file"
DESCRIPTION = """Run a model on the structures of DATA (labels are not needed) and write its
predictions, in internal units, to an extxyz file."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "predict", run, HELP, DESCRIPTION)
    add_model(parser)
    parser.add_argument("data", metavar="DATA", help="structures (extxyz, ASE .db, ...)")
    add_output(parser, "OUT.extxyz", "where to write the predictions", required=True)
    parser.add_argument("--no-energy", action="store_true",
                        help="leave the energies out (e.g. of compositions the model's "
                             "reference energies do not determine)")
    parser.add_argument("--stress", action="store_true",
                        help="add the stress of periodic structures (eV/Angstrom^3)")
    parser.add_argument("--uncertainty", action="store_true",
                        help="add the calibrated uncertainties of energy, forces and "
                             "polarizability (one backward pass more per batch)")
    add_model_run_options(parser)
    add_data_options(parser)


def run(args: argparse.Namespace) -> int:
    from tridft.data.domain import DomainCheck
    from tridft.data.io import read_structures
    from tridft.data.options import parse_keys, parse_units
    from tridft.model.persistence import load_model
    from tridft.outputs import check_outputs
    from tridft.train.evaluate import predict

    keys, units = parse_keys(args.keys), parse_units(args.units)
    check_outputs({"-o": args.output}, inputs={"MODEL": args.model, "DATA": args.data})
    model = load_model(args.model)
    records = read_structures(args.data, keys=keys, units=units)
    domain = DomainCheck.for_model(model, args.data)
    domain.structures(records)
    predictions = predict(model, records, forces=args.forces, batch_size=args.batch_size,
                          stress=args.stress, uncertainty=args.uncertainty,
                          energy=not args.no_energy)
    domain.predictions(records, predictions)  # refuses NaN and absurd numbers
    domain.report()
    write_predictions(args.output, records, predictions,
                      atom_level={name for name, head in model.heads.items()
                                  if head.level == "atom"} | {"forces_uncertainty"})
    print(f"predictions for {len(records)} structures written to {args.output}")
    return 0


def write_predictions(path, records: Sequence, predictions: Sequence[dict],
                      atom_level: set[str]) -> None:
    """Write the structures with their predictions as extxyz, atomically.

    ``atom_level`` names the per-atom outputs (besides forces), which go to the arrays.
    """
    import ase
    import ase.io

    from tridft.files import atomic_output

    images = []
    for record, outputs in zip(records, predictions):
        atoms = ase.Atoms(numbers=record.numbers, positions=record.positions,
                          cell=record.cell if record.cell is not None else np.zeros((3, 3)),
                          pbc=record.pbc)
        for name, value in outputs.items():
            if name == "forces" or name in atom_level:
                atoms.arrays[name] = _per_atom_columns(value)
            elif np.ndim(value) == 0:
                atoms.info[name] = float(value)
            else:
                atoms.info[name] = np.asarray(value, dtype=float).ravel()  # 3x3 -> row-major
        images.append(atoms)
    with atomic_output(path) as temporary:
        ase.io.write(temporary, images, format="extxyz")


def _per_atom_columns(value) -> np.ndarray:
    """(n,) or (n, k): the shapes an extxyz column can hold (a 3x3 per atom becomes 9)."""
    array = np.asarray(value, dtype=float)
    array = array.reshape(len(array), -1)
    return array[:, 0] if array.shape[1] == 1 else array
