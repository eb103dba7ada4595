"""Molecular dynamics with ASE: NVE (velocity Verlet), NVT (Langevin) or NPT (tridft.md.npt),
written to extxyz.

    summary = run_md(atoms_with_calculator, MDSettings(ensemble="nvt", steps=2000), "md.extxyz")

Every ``interval`` steps one frame is appended to the trajectory (see
tridft.md.trajectory): geometry, forces, energy, polarizability, every further
structure-level result of the calculator (``dipole`` ...), velocities, and the
bookkeeping ``time_fs``, ``step``, ``kinetic_energy``, ``total_energy`` (eV) and
``temperature_K`` (with a stress in the results, as in NPT: ``pressure_bar`` and
``volume_A3``). The total energy of every step (not only written ones; with valence springs
between multiple-time-step corrections, of every correction step) feeds the drift
estimate of the summary.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Literal

import ase
import numpy as np
from ase import units as ase_units
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from tridft.errors import InputError
from tridft.md.guard import BlowUpGuard
from tridft.md.npt import Barostat, make_npt_integrator, pressure_bar
from tridft.md.trajectory import TrajectoryWriter

logger = logging.getLogger(__name__)

ENSEMBLES = ("nve", "nvt", "npt")
FAST_FORCES = ("springs", "direct")  # between multiple-time-step corrections
# Results written per atom (arrays) rather than per frame (info), unless the
# calculator says otherwise with a ``per_atom_properties`` attribute.
_PER_ATOM_RESULTS = ("forces", "energies", "charges")
_NOT_WRITTEN = ("free_energy", "direct_forces")


@dataclass(frozen=True)
class MDSettings:
    """How to run the dynamics.

    ensemble:        "nve" (velocity Verlet), "nvt" (Langevin thermostat) or "npt"
                     (a barostat and its thermostat, tridft.md.npt; periodic cells)
    temperature_K:   initial Maxwell-Boltzmann temperature and thermostat target, K
    timestep_fs:     integration time step, fs
    steps:           number of time steps
    friction_per_fs: Langevin friction, 1/fs (NVT only); it broadens spectral lines by
                     about friction / (2 pi c) = 5300 cm^-1 * friction[1/fs]
    interval:        write every ``interval``-th step (step 0 included)
    seed:            seed of the initial velocities and of the Langevin noise
    barostat:        NPT only: target pressure and barostat (default: Barostat(), 1 bar)
    correction_every: k > 0: multiple time steps (tridft.md.integrators): a fast force
                     every step and its correction to -dE/dR every k-th (needs a
                     TriDFTCalculator); 0: the calculator's own forces
    fast_forces:     with correction_every: "springs" (valence springs fitted to the
                     model, tridft.md.reference: conserves energy; the model is evaluated,
                     observed and written only every k-th step, so ``interval`` must be a
                     multiple of k) or "direct" (the direct force head)
    """

    ensemble: Literal["nve", "nvt", "npt"] = "nvt"
    temperature_K: float = 300.0
    timestep_fs: float = 0.5
    steps: int = 1000
    friction_per_fs: float = 0.01
    interval: int = 1
    seed: int = 0
    barostat: Barostat | None = None
    correction_every: int = 0
    fast_forces: Literal["springs", "direct"] = "springs"

    def __post_init__(self):
        if self.ensemble not in ENSEMBLES:
            raise InputError(f"ensemble must be one of {', '.join(ENSEMBLES)}, "
                             f"not '{self.ensemble}'")
        for name in ("timestep_fs", "interval"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.steps < 0 or self.temperature_K < 0 or self.friction_per_fs < 0 \
                or self.correction_every < 0:
            raise InputError("steps, temperature, friction and correction_every must not be "
                             "negative")
        if self.correction_every and self.ensemble == "npt":
            raise InputError("multiple time steps (correction_every) run NVE or NVT, not NPT")
        if self.fast_forces not in FAST_FORCES:
            raise InputError(f"fast_forces must be one of {', '.join(FAST_FORCES)}, "
                             f"not '{self.fast_forces}'")
        if self.observed_every > 1 and self.interval % self.observed_every:
            raise InputError(f"with springs between corrections the model is evaluated "
                             f"every {self.correction_every} steps only: the writing "
                             f"interval ({self.interval}) must be a multiple of it")

    @property
    def observed_every(self) -> int:
        """Steps between the model's full evaluations (energy, polarizability ...)."""
        return self.correction_every if self.correction_every \
            and self.fast_forces == "springs" else 1


@dataclass
class MDSummary:
    """What a run did and how well it conserved energy."""

    steps: int
    frames_written: int
    wall_s: float
    steps_per_s: float
    cpu_s: float  # CPU time of this process (all its threads): the speed on an idle machine
    mean_temperature_K: float
    drift_ev_per_atom_per_ps: float  # slope of a linear fit of the total energy vs time
    ensemble: str = "nve"
    mean_pressure_bar: float | None = None  # NPT: mean instantaneous pressure
    mean_volume_A3: float | None = None

    def lines(self) -> list[str]:
        note = "" if self.ensemble == "nve" else " (thermostatted: not a conservation test)"
        per_cpu_s = self.steps / self.cpu_s if self.cpu_s > 0 else math.inf
        return [f"steps: {self.steps} ({self.steps_per_s:.1f} steps/s, {self.wall_s:.1f} s; "
                f"{per_cpu_s:.1f} steps per CPU second)",
                f"frames written: {self.frames_written}",
                f"mean temperature: {self.mean_temperature_K:.1f} K",
                f"total-energy drift: {self.drift_ev_per_atom_per_ps:+.3e} eV/atom/ps{note}"] \
            + self._npt_lines()

    def _npt_lines(self) -> list[str]:
        if self.mean_pressure_bar is None:
            return []
        return [f"mean pressure: {self.mean_pressure_bar:.0f} bar, "
                f"mean volume: {self.mean_volume_A3:.1f} A^3"]


def initial_velocities(atoms: ase.Atoms, temperature_K: float, seed: int) -> None:
    """Maxwell-Boltzmann velocities at ``temperature_K`` with zero total (angular) momentum.

    The velocities are then rescaled so that the kinetic temperature is exactly
    ``temperature_K`` (as ASE counts degrees of freedom: 3N minus those its
    constraints remove). Angular momentum is only removed for molecules, where it is
    conserved.
    """
    rng = np.random.default_rng(seed)
    _maxwell_boltzmann(atoms, temperature_K, rng)
    Stationary(atoms, preserve_temperature=False)
    if not np.any(atoms.pbc) and len(atoms) > 1:
        ZeroRotation(atoms, preserve_temperature=False)
    current = atoms.get_temperature()
    if current > 0:
        atoms.set_velocities(atoms.get_velocities() * np.sqrt(temperature_K / current))


def _maxwell_boltzmann(atoms: ase.Atoms, temperature_K: float, rng) -> None:
    try:  # ASE >= 3.29 renamed the function
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)


def energy_drift(time_fs: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """eV per atom per ps: slope of the least-squares line through (time, total energy)."""
    if len(time_fs) < 2:
        return float("nan")
    slope_ev_per_fs = np.polyfit(np.asarray(time_fs), np.asarray(total_energy), 1)[0]
    return float(slope_ev_per_fs * 1000.0 / n_atoms)


def make_integrator(atoms: ase.Atoms, settings: MDSettings):
    """Velocity Verlet or Langevin, or multiple time steps with either (correction_every)."""
    if settings.ensemble == "npt":
        return make_npt_integrator(atoms, settings.barostat or Barostat(), settings.timestep_fs,
                                   settings.temperature_K, settings.friction_per_fs,
                                   settings.seed)
    timestep = settings.timestep_fs * ase_units.fs
    if settings.correction_every:
        from tridft.md.integrators import MultipleTimeStepVerlet
        from tridft.md.reference import ValenceSprings

        friction = settings.friction_per_fs / ase_units.fs if settings.ensemble == "nvt" else 0
        reference = ValenceSprings.from_model(atoms.calc.model, atoms) \
            if settings.fast_forces == "springs" else None
        return MultipleTimeStepVerlet(atoms, timestep, every=settings.correction_every,
                                      reference=reference, temperature_K=settings.temperature_K,
                                      friction=friction,
                                      rng=np.random.default_rng(settings.seed + 1))
    if settings.ensemble == "nve":
        return VelocityVerlet(atoms, timestep)
    return Langevin(atoms, timestep, temperature_K=settings.temperature_K,
                    friction=settings.friction_per_fs / ase_units.fs, fixcm=False,
                    rng=np.random.default_rng(settings.seed + 1))


def hold_centre_of_mass(atoms: ase.Atoms) -> None:
    """Add ASE's FixCom constraint unless atoms already have constraints.

    Direct forces need not sum to zero, so without it a molecule drifts away; with
    it the Langevin thermostat samples the right distribution (ASE's advice) and
    ASE's temperature counts 3N - 3 degrees of freedom.
    """
    if not atoms.constraints:
        atoms.set_constraint(FixCom())


def run_md(atoms: ase.Atoms, settings: MDSettings, trajectory: str | os.PathLike,
           progress: bool = False, initialize: bool = True) -> MDSummary:
    """Run the dynamics of ``atoms`` (with a calculator attached); write ``trajectory``.

    initialize: draw Maxwell-Boltzmann velocities first (False: keep atoms' velocities).
    A FixCom constraint is added to ``atoms`` if they have no constraints.
    """
    if atoms.calc is None:
        raise InputError("the structure has no calculator attached")
    if settings.ensemble != "npt" or (settings.barostat or Barostat()).holds_centre_of_mass:
        hold_centre_of_mass(atoms)
    if initialize:
        initial_velocities(atoms, settings.temperature_K, settings.seed)
    integrator = make_integrator(atoms, settings)
    times, totals, temperatures, pressures, volumes = [], [], [], [], []
    bar = _progress_bar(settings.steps, progress)

    with TrajectoryWriter(trajectory) as writer:

        def observe() -> None:
            step = integrator.nsteps
            potential = atoms.get_potential_energy()
            kinetic = atoms.get_kinetic_energy()
            guard.check(step, potential, kinetic, atoms.get_temperature())  # before writing
            time_fs = step * settings.timestep_fs
            times.append(time_fs)
            totals.append(potential + kinetic)
            temperatures.append(atoms.get_temperature())
            if settings.ensemble == "npt":
                pressures.append(pressure_bar(atoms))
                volumes.append(atoms.get_volume())
            if step % settings.interval == 0:
                writer.write(atoms, *frame_contents(atoms, step, time_fs))
            if bar is not None and step > 0:
                bar.update(settings.observed_every)

        guard = BlowUpGuard(settings.temperature_K, len(atoms), str(trajectory))
        integrator.attach(observe, interval=settings.observed_every)
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            integrator.run(settings.steps)
        except InputError as error:
            if guard.last_good_step is None:  # the starting structure itself is refused
                raise
            # The calculator refused a structure the dynamics produced (atoms on top of
            # each other): that is a blow-up, reported with the step and the frames kept.
            guard.stop(integrator.nsteps + 1, str(error))
        finally:
            if bar is not None:
                bar.close()
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        frames = writer.frames_written

    return MDSummary(steps=settings.steps, frames_written=frames, wall_s=wall,
                     steps_per_s=settings.steps / wall if wall > 0 else math.inf,
                     cpu_s=cpu,
                     mean_temperature_K=float(np.mean(temperatures)),
                     drift_ev_per_atom_per_ps=energy_drift(np.array(times), np.array(totals),
                                                           len(atoms)),
                     ensemble=settings.ensemble,
                     mean_pressure_bar=float(np.mean(pressures)) if pressures else None,
                     mean_volume_A3=float(np.mean(volumes)) if volumes else None)


def frame_contents(atoms: ase.Atoms, step: int, time_fs: float) -> tuple[dict, dict]:
    """(info, arrays) of one trajectory frame, from the calculator's current results."""
    potential = atoms.get_potential_energy()
    kinetic = atoms.get_kinetic_energy()
    info = {"step": int(step), "time_fs": float(time_fs), "energy": float(potential),
            "kinetic_energy": float(kinetic), "total_energy": float(potential + kinetic),
            "temperature_K": float(atoms.get_temperature())}
    if "stress" in atoms.calc.results and np.all(atoms.pbc):
        info["pressure_bar"] = pressure_bar(atoms)
        info["volume_A3"] = float(atoms.get_volume())
    arrays = {"velocities": atoms.get_velocities() * ase_units.fs}  # Angstrom/fs
    per_atom = getattr(atoms.calc, "per_atom_properties", _PER_ATOM_RESULTS)
    for name, value in atoms.calc.results.items():
        if name in info or name in _NOT_WRITTEN:
            continue
        value = np.asarray(value, dtype=np.float64)
        if name in per_atom:
            arrays[name] = value.reshape(len(atoms), -1)
        else:
            info[name] = value
    return info, arrays


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI).
    return tqdm(total=total, unit="step", desc="md", smoothing=0.1, mininterval=0.5,
                disable=None)
