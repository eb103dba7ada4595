"""``tridft sample MOLECULE -o OUT.extxyz``: distorted geometries of one molecule to label.

A thin layer over :mod:`tridft.label.sampling`; see docs/labelling.md.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import add_command, add_output, add_seed, positive_int


HELP = "distorted geometries of a molecule, to label with tridft label"
DESCRIPTION = """Without --model: a crude sampler that moves every atom by a Gaussian
displacement of width sqrt(kB T / k), k an element-dependent effective force constant (H 8,
others 20 eV/A^2), and rejects geometries with atoms closer than 0.7 x the sum of covalent
radii. It samples bond stretches and bends, not torsions or conformers, and is no Boltzmann
distribution. With --model: snapshots of Langevin MD driven by a trained tridft model."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "sample", run, HELP, DESCRIPTION)
    parser.add_argument("molecule", metavar="MOLECULE",
                        help="structure file, or a name ase.build.molecule knows "
                             "(H2O, CH3CH2OH, C6H6, ...; also water, ethanol, benzene)")
    add_output(parser, "OUT.extxyz", "where to write the geometries (extxyz)", required=True)
    parser.add_argument("--n", type=positive_int, default=200, help="number of geometries "
                        "(default: 200)")
    parser.add_argument("--temperature", type=float, default=500.0, metavar="K",
                        help="temperature in Kelvin (default: 500)")
    add_seed(parser)
    parser.add_argument("--index", type=int, default=0,
                        help="frame of MOLECULE's file to start from (default: 0)")
    md = parser.add_argument_group("MD sampling with a trained model")
    md.add_argument("--model", metavar="MODEL", help="trained tridft model (model.pt): "
                    "sample by Langevin MD with it instead of random displacements")
    md.add_argument("--interval", type=positive_int, default=20, metavar="STEPS",
                    help="MD steps between snapshots (default: 20)")
    md.add_argument("--timestep", type=float, default=0.5, metavar="FS",
                    help="MD time step in fs (default: 0.5)")
    md.add_argument("--equilibration", type=int, default=200, metavar="STEPS",
                    help="MD steps discarded before the first snapshot (default: 200)")


def run(args: argparse.Namespace) -> int:
    import ase.io

    from tridft.files import atomic_output
    from tridft.label import sampling
    from tridft.outputs import check_outputs

    check_outputs({"-o": args.output}, inputs={"MOLECULE": args.molecule, "--model": args.model})
    molecule = sampling.load_molecule(args.molecule, index=args.index)
    if args.model:
        samples = sampling.langevin_snapshots(
            molecule, args.model, args.n, args.temperature, seed=args.seed,
            timestep_fs=args.timestep, interval=args.interval,
            equilibration=args.equilibration)
        how = f"Langevin MD with {args.model}"
    else:
        samples = sampling.random_displacements(molecule, args.n, args.temperature,
                                                seed=args.seed)
        how = "random displacements (crude sampler)"
    with atomic_output(args.output) as temporary:
        ase.io.write(str(temporary), samples, format="extxyz")
    formula = molecule.get_chemical_formula()
    print(f"{len(samples)} geometries of {formula} at {args.temperature:g} K, {how}: "
          f"{args.output}")
    print(f"next: tridft label {args.output} -o labelled.extxyz")
    return 0
