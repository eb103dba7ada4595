"""``tridft md MODEL STRUCTURE -o TRAJ.extxyz``: molecular dynamics with a trained model.

NVE (velocity Verlet), NVT (Langevin) or, for periodic cells, NPT (a Berendsen or MTK
barostat on the model's stress) from Maxwell-Boltzmann velocities; every
``--interval`` steps a frame with energy, forces, polarizability (and dipole, and
any further head; stress, pressure_bar and volume_A3 in NPT; the uncertainties with
``--uncertainty``) is appended to the trajectory, which stays readable if the run is
killed. Ends with a summary: speed, mean temperature, total-energy drift (mean
pressure and volume in NPT). ``--uncertainty-limit`` warns or stops (``--on-uncertainty``)
when the predicted force uncertainty of an atom passes the limit.
"""

from __future__ import annotations

import argparse

from tridft.cli.arguments import (add_command, add_model_and_structure, add_no_progress, add_output,
                                  add_seed, non_negative_float, positive_float, positive_int,
                                  structure_at)


# Default steps between corrections with valence springs in between (docs/spectra.md):
# 1.5 fs at the default 0.5 fs step.
SPRING_EVERY = 3

HELP = "molecular dynamics with a trained model (ASE), written to extxyz"
DESCRIPTION = """Run NVE, NVT (Langevin) or NPT molecular dynamics of STRUCTURE with MODEL
and write energy, forces, polarizability (and dipole) of every --interval-th step to an
extxyz trajectory, for `tridft spectrum`."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "md", run, HELP, DESCRIPTION)
    add_model_and_structure(parser, "starting structure")
    add_output(parser, "TRAJ.extxyz", "trajectory to write (replaced if it exists)",
               required=True)
    parser.add_argument("--ensemble", choices=("nve", "nvt", "npt"), default="nvt",
                        help="nve: velocity Verlet; nvt: Langevin thermostat; npt: barostat "
                             "and thermostat, periodic cells only (default: nvt)")
    parser.add_argument("--temperature", type=non_negative_float, default=300.0, metavar="K",
                        help="initial and thermostat temperature in K (default: 300)")
    parser.add_argument("--timestep", type=positive_float, default=0.5, metavar="FS",
                        help="time step in fs (default: 0.5)")
    parser.add_argument("--steps", type=positive_int, default=1000, metavar="N",
                        help="number of time steps (default: 1000)")
    parser.add_argument("--friction", type=non_negative_float, default=0.01, metavar="PER_FS",
                        help="Langevin friction in 1/fs (default: 0.01; it broadens spectral "
                             "lines by ~5300 cm^-1 x friction)")
    parser.add_argument("--pressure", type=float, default=1.0, metavar="BAR",
                        help="NPT target pressure in bar (default: 1)")
    parser.add_argument("--barostat", choices=("berendsen", "mtk"), default="berendsen",
                        help="NPT: berendsen (robust weak coupling) or mtk (Martyna-Tobias-"
                             "Klein, samples NPT; use --forces conservative) "
                             "(default: berendsen)")
    parser.add_argument("--barostat-time", type=positive_float, default=1000.0, metavar="FS",
                        help="NPT: relaxation time of the volume in fs (default: 1000)")
    parser.add_argument("--compressibility", type=positive_float, default=4.57e-5,
                        metavar="PER_BAR",
                        help="NPT Berendsen: compressibility of the material in 1/bar "
                             "(default: 4.57e-5, water)")
    parser.add_argument("--uncertainty", action="store_true",
                        help="write the model's calibrated uncertainties to every frame")
    parser.add_argument("--uncertainty-limit", type=positive_float, default=None,
                        metavar="EV_PER_A",
                        help="watch the largest predicted force uncertainty of an atom "
                             "(eV/A) and act on --on-uncertainty above it")
    parser.add_argument("--on-uncertainty", choices=("warn", "stop"), default="warn",
                        help="above --uncertainty-limit: warn once and count, or stop the run "
                             "(default: warn)")
    parser.add_argument("--interval", type=positive_int, default=None, metavar="K",
                        help="write every K-th step (default: 2, or every correction with "
                             "--mts-fast springs; the spectrum reaches up to 1 / (2 K timestep): "
                             "16678 cm^-1 at K = 2 and 0.5 fs, 11118 at K = 3)")
    parser.add_argument("--forces", choices=("conservative", "mts", "direct"),
                        default="conservative",
                        help="conservative: -dE/dR every step (the default: conserves energy); "
                             "mts: a fast force every step (--mts-fast) and its correction to "
                             "-dE/dR every --correction-every steps (with valence springs ~3x "
                             "as fast, the energy bounded but drifting more, C-H bands ~8 "
                             "cm^-1 lower; not in npt); direct: the direct force head (does "
                             "not conserve energy). docs/spectra.md has the measured speed "
                             "and drift of each")
    parser.add_argument("--correction-every", type=positive_int, default=None, metavar="K",
                        help=f"mts: steps between corrections to -dE/dR (default: "
                             f"{SPRING_EVERY} with valence springs, 2 with the direct head)")
    parser.add_argument("--mts-fast", choices=("springs", "direct"), default="springs",
                        help="mts: the fast force between corrections: valence springs fitted to "
                             "the model (conserve energy; the model, and so the trajectory, "
                             "is evaluated at the corrections only) or the direct force head "
                             "(default: springs)")
    add_seed(parser)
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default: 1, fastest for small molecules)")
    add_no_progress(parser)


def run(args: argparse.Namespace) -> int:
    import ase
    import torch

    from tridft.md.calculator import TriDFTCalculator
    from tridft.md.dynamics import MDSettings, run_md
    from tridft.md.npt import Barostat
    from tridft.data.domain import DomainCheck
    from tridft.outputs import check_outputs

    check_outputs({"-o": args.output}, inputs={"MODEL": args.model, "STRUCTURE": args.structure})
    torch.set_num_threads(args.threads)
    every = correction_every(args)
    settings = MDSettings(ensemble=args.ensemble, temperature_K=args.temperature,
                          timestep_fs=args.timestep, steps=args.steps,
                          friction_per_fs=args.friction, interval=writing_interval(args, every),
                          seed=args.seed, correction_every=every, fast_forces=args.mts_fast,
                          barostat=Barostat(pressure_bar=args.pressure, kind=args.barostat,
                                            coupling_fs=args.barostat_time,
                                            compressibility_per_bar=args.compressibility)
                          if args.ensemble == "npt" else None)
    record = structure_at(args.structure, args.index)
    atoms = ase.Atoms(numbers=record.numbers, positions=record.positions, cell=record.cell,
                      pbc=record.pbc)
    forces = ("direct" if args.mts_fast == "direct" else "conservative") \
        if args.forces == "mts" else args.forces
    atoms.calc = TriDFTCalculator(args.model, forces=forces, device=args.device,
                                  uncertainty=args.uncertainty,
                                  uncertainty_limit=args.uncertainty_limit,
                                  on_uncertainty=args.on_uncertainty)
    DomainCheck(atoms.calc.domain.domain, args.structure).structure(record, args.index)

    summary = run_md(atoms, settings, args.output, progress=not args.no_progress)
    print(f"{settings.ensemble.upper()} {settings.temperature_K:g} K, "
          f"{settings.timestep_fs:g} fs x {settings.steps} steps, {_describe(args)}: "
          f"trajectory written to {args.output}")
    for line in summary.lines():
        print(f"  {line}")
    if atoms.calc.watch is not None:
        print(f"  {atoms.calc.watch.summary()}")
    return 0


def correction_every(args: argparse.Namespace) -> int:
    """k of multiple time steps (0: none): --correction-every, or SPRING_EVERY with bond
    springs and 2 with the direct head between corrections (docs/spectra.md: what each
    costs)."""
    if args.forces != "mts":
        return 0
    if args.correction_every is not None:
        return args.correction_every
    return SPRING_EVERY if args.mts_fast == "springs" else 2


def writing_interval(args: argparse.Namespace, every: int) -> int:
    """--interval, or 2; with valence springs the model exists only every k steps: k."""
    if args.interval is not None:
        return args.interval
    return every if every > 0 and args.mts_fast == "springs" else 2


def _describe(args: argparse.Namespace) -> str:
    every = correction_every(args)
    if args.forces == "mts" and args.mts_fast == "springs":
        return f"valence springs between corrections to -dE/dR every {every} steps"
    if args.forces == "mts":
        return f"direct forces corrected to -dE/dR every {every} steps"
    return f"{args.forces} forces"
