"""``tridft spectrum TRAJ``: Raman (and IR) spectra of an MD trajectory.

Reads the polarizability (and dipole) of every frame of a ``tridft md`` trajectory,
prints the strongest Raman (and IR) peaks, and writes PREFIX.csv (frequency_cm1,
raman_iso, raman_aniso, raman_total, ir) and PREFIX.png. See docs/spectra.md for
the formulas and the quantum correction.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tridft.cli.arguments import (add_command, add_output, add_raman_geometry, non_negative_float,
                                  positive_float, positive_int)
from tridft.extras import require_matplotlib


HELP = "Raman and IR spectra from an MD trajectory"
DESCRIPTION = """Raman spectrum from the polarizability autocorrelation (and IR from the
dipole-derivative autocorrelation when the trajectory has dipoles)."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "spectrum", run, HELP, DESCRIPTION)
    parser.add_argument("trajectory", metavar="TRAJ", help="extxyz trajectory of `tridft md`")
    add_output(parser, "PREFIX", "write PREFIX.csv and PREFIX.png (default: TRAJ without its "
                                 "extension, plus _spectrum)")
    parser.add_argument("--max-freq", type=positive_float, default=4000.0, metavar="CM1",
                        help="highest wavenumber plotted, written and searched (default: 4000)")
    parser.add_argument("--window", choices=("hann", "blackman", "gaussian", "none"),
                        default="hann", help="window of the correlation functions "
                                             "(default: hann)")
    parser.add_argument("--temperature", type=non_negative_float, metavar="K",
                        help="temperature of the quantum correction (default: the "
                             "trajectory's mean temperature; 0: classical, no correction)")
    parser.add_argument("--correlation-time", type=positive_float, metavar="FS",
                        help="length of the correlation functions in fs (default: half the "
                             "trajectory; the resolution is ~33356 / FS cm^-1)")
    parser.add_argument("--skip", type=non_negative_float, default=0.0, metavar="FS",
                        help="leave out the first FS femtoseconds (equilibration)")
    add_raman_geometry(parser)
    parser.add_argument("--peaks", type=positive_int, default=10, metavar="N",
                        help="how many peaks to print (default: 10)")


def run(args: argparse.Namespace) -> int:
    require_matplotlib("the spectrum plot (PREFIX.png)")  # before any work
    from tridft.errors import InputError
    from tridft.spectra import correlation as sp
    from tridft.md.trajectory import read_trajectory, series
    from tridft.outputs import check_outputs

    trajectory = Path(args.trajectory)
    prefix = Path(args.output) if args.output else trajectory.with_name(
        trajectory.stem + "_spectrum")
    csv_path = prefix.with_name(prefix.name + ".csv")
    png_path = prefix.with_name(prefix.name + ".png")
    check_outputs({"-o (csv)": csv_path, "-o (png)": png_path},
                  inputs={"TRAJ": args.trajectory})
    frames = read_trajectory(args.trajectory)
    if args.skip:
        time_fs = series(frames, "time_fs", path=args.trajectory)
        frames = [f for f, t in zip(frames, time_fs) if t - time_fs[0] >= args.skip]
        if not frames:
            raise InputError(f"--skip {args.skip} fs leaves no frames", path=args.trajectory)
    result = sp.spectra_from_frames(frames, temperature_K=args.temperature,
                                    max_lag_fs=args.correlation_time, window=args.window,
                                    path=args.trajectory,
                                    geometry=sp.RamanGeometry(args.incident, args.analyser))
    nyquist = float(result.frequency_cm1[-1])
    if nyquist < args.max_freq:
        print(f"warning: frames are too far apart to see above {nyquist:.0f} cm^-1 "
              f"(write them more often with tridft md --interval)")

    raman_peaks = sp.find_peaks(result.frequency_cm1, result.raman_total, top=args.peaks,
                                max_cm1=args.max_freq)
    sp.write_csv(result, csv_path, max_cm1=args.max_freq)
    sp.plot_spectra(result, png_path, max_cm1=args.max_freq, peaks=raman_peaks)

    correction = (f"quantum-corrected at {result.temperature_K:.0f} K"
                  if result.temperature_K else "classical")
    print(f"{len(frames)} frames, resolution ~{result.resolution_cm1:.1f} cm^-1, {correction}")
    print("Raman peaks (cm^-1): " + _format(raman_peaks))
    if result.ir is not None:
        ir_peaks = sp.find_peaks(result.frequency_cm1, result.ir, top=args.peaks,
                                 max_cm1=args.max_freq)
        print("IR peaks (cm^-1):    " + _format(ir_peaks))
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _format(peaks: list[float]) -> str:
    return ", ".join(f"{p:.0f}" for p in peaks) if peaks else "(none found)"
