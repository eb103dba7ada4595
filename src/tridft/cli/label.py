"""``tridft label STRUCTURES -o OUT.extxyz``: DFT labels with PySCF, in parallel on Dask.

A thin layer over :func:`tridft.label.runner.label_file`; see docs/labelling.md.
Rerunning the same command resumes: structures already in OUT are skipped.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import add_command, add_output, non_negative_int
from tridft.label.pyscf_backend import PROPERTIES, LabelSettings

_DEFAULTS = LabelSettings()


def _properties(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in PROPERTIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown properties {', '.join(unknown) or '(none)'}; choose from "
            f"{','.join(PROPERTIES)}")
    return names


HELP = "label structures with DFT (PySCF), in parallel on Dask"
DESCRIPTION = """Kohn-Sham DFT energies, forces, dipoles and static polarizabilities
(analytic, CPKS) for molecules, with PySCF. Frames are appended to OUT as they finish;
rerunning the same command skips structures already labelled, and failures go to
OUT.failures.jsonl. A structure's own 'charge' and 'multiplicity' (info keys) override the
options. With --isolated-atoms, the energies of the free atoms of every element in
STRUCTURES (a structure file, or elements such as H,C,O) at the same level of theory
are written to OUT as YAML, for data.reference_energies. Needs the 'label' extra:
pip install 'tridft[label]'."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "label", run, HELP, DESCRIPTION)
    parser.add_argument("structures", metavar="STRUCTURES",
                        help="structures to label (extxyz, ASE .db, anything ase.io.read reads); "
                             "molecules only")
    add_output(parser, "OUT.extxyz", "labelled structures are appended here (created if missing)",
               required=True)
    theory = parser.add_argument_group("level of theory")
    theory.add_argument("--xc", default=_DEFAULTS.xc,
                        help=f"exchange-correlation functional (default: {_DEFAULTS.xc})")
    theory.add_argument("--basis", default=_DEFAULTS.basis,
                        help=f"basis set (default: {_DEFAULTS.basis})")
    theory.add_argument("--auxbasis", default=_DEFAULTS.auxbasis,
                        help="density-fitting basis, or 'auto' for PySCF's choice "
                             f"(default: {_DEFAULTS.auxbasis})")
    theory.add_argument("--no-density-fit", dest="density_fit", action="store_false",
                        help="exact Coulomb integrals instead of density fitting (slower)")
    theory.add_argument("--grid-level", type=int, default=_DEFAULTS.grid_level, metavar="N",
                        help=f"DFT integration grid level 0-9 (default: {_DEFAULTS.grid_level}; "
                             "1 gives force errors of ~16 meV/Angstrom on ethanol)")
    theory.add_argument("--conv-tol", type=float, default=_DEFAULTS.conv_tol, metavar="HARTREE",
                        help=f"SCF energy convergence (default: {_DEFAULTS.conv_tol:g})")
    theory.add_argument("--cpks-tol", type=float, default=_DEFAULTS.cpks_tol, metavar="TOL",
                        help="convergence of the polarizability (CPKS) equations "
                             f"(default: {_DEFAULTS.cpks_tol:g})")
    theory.add_argument("--max-cycle", type=int, default=_DEFAULTS.max_cycle, metavar="N",
                        help="SCF iterations before one retry with a second-order solver "
                             f"(default: {_DEFAULTS.max_cycle})")
    theory.add_argument("--charge", type=int, default=0,
                        help="total charge of structures without a 'charge' info key (default: 0)")
    theory.add_argument("--multiplicity", type=int, default=1,
                        help="2S+1 of structures without a 'multiplicity' info key "
                             "(default: 1; >1 runs unrestricted KS)")
    parser.add_argument("--isolated-atoms", action="store_true",
                        help="write the isolated-atom energies (eV, YAML) of the elements in "
                             "STRUCTURES (a file, or a list such as H,C,O) to OUT instead: "
                             "reference energies for data.reference_energies")
    parser.add_argument("--properties", type=_properties, default=PROPERTIES,
                        metavar="LIST",
                        help=f"comma-separated subset of {','.join(PROPERTIES)} (default: all)")
    run_group = parser.add_argument_group("parallel run")
    run_group.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                           help="local single-threaded worker processes (default: one per "
                                "core); 0 runs in this process without Dask")
    run_group.add_argument("--scheduler", metavar="ADDR",
                           help="address of a running Dask scheduler (tcp://host:8786), "
                                "e.g. from dask-jobqueue; --workers is then ignored")
    run_group.add_argument("--threads", type=int, default=1, metavar="N",
                           help="OpenMP threads per worker (default: 1, usually fastest)")
    run_group.add_argument("--no-progress", dest="progress", action="store_false",
                           help="no progress bar")


def settings_from_args(args: argparse.Namespace) -> LabelSettings:
    """The LabelSettings the options describe."""
    return LabelSettings(xc=args.xc, basis=args.basis, auxbasis=args.auxbasis,
                         density_fit=args.density_fit, grid_level=args.grid_level,
                         conv_tol=args.conv_tol, cpks_tol=args.cpks_tol,
                         max_cycle=args.max_cycle, charge=args.charge,
                         multiplicity=args.multiplicity, threads=args.threads,
                         properties=args.properties)


def run(args: argparse.Namespace) -> int:
    from tridft.label.runner import label_file
    from tridft.outputs import check_outputs

    settings = settings_from_args(args)
    if args.isolated_atoms:
        return run_isolated_atoms(args, settings)
    check_outputs({"-o": args.output}, inputs={"STRUCTURES": args.structures})
    summary = label_file(args.structures, args.output, settings, workers=args.workers,
                         scheduler=args.scheduler, progress=args.progress)
    print(format_summary(summary, settings))
    return 1 if summary.failed else 0


def run_isolated_atoms(args: argparse.Namespace, settings: LabelSettings) -> int:
    from tridft.label.isolated_atoms import isolated_atom_energies, write_reference_energies
    from tridft.outputs import check_outputs

    elements = elements_of(args.structures)
    check_outputs({"-o": args.output}, inputs={"STRUCTURES": args.structures})
    energies = isolated_atom_energies(elements, settings, progress=args.progress)
    write_reference_energies(energies, settings, args.output)
    print(f"{settings.level_of_theory}: isolated-atom energies (eV)")
    print("\n".join(f"  {symbol:<2} {energy:.6f}" for symbol, energy in energies.items()))
    print(f"written to {args.output}; train with --set data.reference_energies={args.output}")
    return 0


def elements_of(structures: str) -> list[int]:
    """The atomic numbers in a structure file, or in a list of elements ('H,C,O')."""
    from pathlib import Path

    from tridft.data.io import KeyMap, read_structures
    from tridft.label.isolated_atoms import element_symbols

    if Path(structures).exists():
        unlabelled = KeyMap(energy=None, forces=None, polarizability=None, dipole=None)
        return sorted({int(z) for record in read_structures(structures, unlabelled)
                       for z in record.numbers})
    return element_symbols(part for part in structures.split(",") if part.strip())


def format_summary(summary, settings: LabelSettings) -> str:
    """A few lines: done, skipped, failed, and the time per structure."""
    lines = [f"{settings.level_of_theory}: {', '.join(settings.properties)}",
             f"labelled  {summary.done}",
             f"skipped   {summary.skipped} (already in {summary.output})",
             f"failed    {summary.failed}"]
    if summary.failed:
        lines[-1] += f" (reasons in {summary.failures_file})"
        lines += [f"  {reason}" for reason in summary.failure_reasons[:5]]
    if summary.done:
        lines.append(f"time      {summary.seconds_per_structure:.2f} s per structure "
                     f"(wall clock, all workers); {summary.compute_per_structure:.2f} s "
                     "per structure on one worker")
    return "\n".join(lines)
