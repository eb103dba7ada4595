"""``tridft vibrations MODEL STRUCTURE``: harmonic frequencies, IR and Raman of a model.

Relaxes STRUCTURE with the model's conservative forces (float64), takes the Hessian
of its energy by autograd, and the derivatives of its polarizability (and dipole,
when the model has a dipole head) along the normal modes. Prints a table and writes
PREFIX.csv (one row per mode), PREFIX.png (Lorentzian-broadened Raman and IR) and
PREFIX_relaxed.extxyz (the geometry the modes belong to).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tridft.cli.arguments import (add_command, add_model_and_structure, add_output,
                                  add_raman_geometry, positive_float, structure_at)
from tridft.extras import require_matplotlib

COLUMNS = ["mode", "frequency_cm1", "raman_activity_A4_per_amu", "depolarisation_ratio",
           "raman_a2_A4_per_amu", "raman_gamma2_A4_per_amu", "ir_intensity_km_per_mol"]


HELP = "harmonic frequencies, IR intensities and Raman activities"
DESCRIPTION = """Relax STRUCTURE with MODEL, then its harmonic normal modes with Raman
activities (45 a'^2 + 7 g'^2, A^4/amu) from the model's polarizability and IR intensities
(km/mol) from its dipole head, if it has one."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "vibrations", run, HELP, DESCRIPTION)
    add_model_and_structure(parser, "structure file")
    add_output(parser, "PREFIX", "write PREFIX.csv, PREFIX.png and PREFIX_relaxed.extxyz "
                                 "(default: STRUCTURE without extension, plus _vibrations)")
    parser.add_argument("--fmax", type=positive_float, default=1e-4, metavar="EV_PER_A",
                        help="relaxation threshold on the largest force (default: 1e-4)")
    parser.add_argument("--no-relax", action="store_true",
                        help="analyse STRUCTURE as it is (frequencies of a non-stationary "
                             "point are not meaningful)")
    parser.add_argument("--fwhm", type=positive_float, default=10.0, metavar="CM1",
                        help="Lorentzian width of the plotted spectra (default: 10)")
    add_raman_geometry(parser)


def run(args: argparse.Namespace) -> int:
    require_matplotlib("the spectrum plot (PREFIX.png)")  # before any work
    import ase
    import numpy as np

    from tridft.spectra.correlation import RamanGeometry
    from tridft.spectra.vibrations import vibrational_analysis
    from tridft.model.persistence import load_model
    from tridft.outputs import check_outputs

    prefix = Path(args.output) if args.output else Path(args.structure).with_name(
        Path(args.structure).stem + "_vibrations")
    check_outputs({f"-o ({suffix})": prefix.with_name(prefix.name + suffix)
                   for suffix in (".csv", ".png", "_relaxed.extxyz")},
                  inputs={"MODEL": args.model, "STRUCTURE": args.structure})
    record = structure_at(args.structure, args.index)
    atoms = ase.Atoms(numbers=record.numbers, positions=record.positions, cell=record.cell,
                      pbc=record.pbc)
    model = load_model(args.model)
    analysis = vibrational_analysis(model, atoms, fmax=args.fmax,
                                    relax_first=not args.no_relax)
    geometry = RamanGeometry(args.incident, args.analyser)

    structure = Path(args.structure)
    prefix = Path(args.output) if args.output else structure.with_name(
        structure.stem + "_vibrations")
    rows = _rows(analysis)
    _write_csv(rows, prefix.with_name(prefix.name + ".csv"))
    _plot(analysis, geometry, prefix.with_name(prefix.name + ".png"), args.fwhm)
    relaxed = prefix.with_name(prefix.name + "_relaxed.extxyz")
    _write_structure(analysis.atoms, relaxed)

    if not analysis.converged:
        print(f"warning: the relaxation did not reach fmax {args.fmax:g} eV/A; "
              "frequencies of a non-stationary point are approximate")
    imaginary = int(np.sum(analysis.frequencies_cm1 < 0))
    if imaginary:
        print(f"warning: {imaginary} imaginary mode(s) (printed negative): not a minimum")
    print(f"{'mode':>4} {'freq (cm^-1)':>12} {'Raman (A^4/amu)':>15} {'depol.':>7} "
          f"{'IR (km/mol)':>11}")
    for row in rows:
        ir = "" if row[6] is None else f"{row[6]:11.2f}"
        raman = "" if row[2] is None else f"{row[2]:15.2f}"
        depolarisation = "" if row[3] is None else f"{row[3]:7.3f}"
        print(f"{row[0]:4d} {row[1]:12.1f} {raman:>15} {depolarisation:>7} {ir:>11}")
    print(f"wrote {prefix}.csv, {prefix}.png and {relaxed}")
    return 0


def _rows(analysis) -> list[list]:
    def column(values):
        return [None] * len(analysis.frequencies_cm1) if values is None else list(values)

    return [[k + 1, *values] for k, values in enumerate(zip(
        analysis.frequencies_cm1, column(analysis.raman_activity),
        column(analysis.depolarisation_ratio), column(analysis.raman_isotropic),
        column(analysis.raman_anisotropic), column(analysis.ir_intensity_km_mol)))]


def _write_csv(rows: list[list], path: Path) -> None:
    import csv

    from tridft.files import atomic_output

    with atomic_output(path) as temporary, temporary.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row[0]] + ["" if v is None else f"{v:.6g}" for v in row[1:]])


def _write_structure(atoms, path: Path) -> None:
    import ase.io

    from tridft.files import atomic_output

    with atomic_output(path) as temporary:
        ase.io.write(temporary, atoms, format="extxyz")


def _plot(analysis, geometry, path: Path, fwhm_cm1: float) -> None:
    import numpy as np

    require_matplotlib()
    from matplotlib.figure import Figure

    from tridft.spectra.vibrations import broadened
    from tridft.report.plots import save_figure

    grid = np.linspace(0.0, max(4000.0, float(analysis.frequencies_cm1.max()) + 200), 4000)
    panels = [(f"Raman activity\n({geometry.label()})", analysis.raman(geometry)),
              ("IR (km/mol)", analysis.ir_intensity_km_mol)]
    panels = [(label, values) for label, values in panels if values is not None]
    if not panels:
        return
    figure = Figure(figsize=(8, 3 * len(panels)), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for axis, (label, values) in zip(axes, panels):
        axis.plot(grid, broadened(analysis.frequencies_cm1, values, grid, fwhm_cm1),
                  color="black", lw=1.0)
        axis.set_ylabel(label)
    axes[-1].set_xlabel(f"wavenumber (cm$^{{-1}}$); Lorentzians of {fwhm_cm1:g} cm$^{{-1}}$")
    axes[-1].set_xlim(grid[0], grid[-1])
    save_figure(figure, path)
