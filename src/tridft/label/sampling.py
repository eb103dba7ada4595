"""Geometries to label: distorted copies of one molecule.

Two samplers, both deliberately simple:

* :func:`random_displacements` (no model needed) is a crude sampler. Every atom is
  moved by an independent Gaussian displacement whose width is that of a classical
  harmonic oscillator at temperature T, sigma = sqrt(kB T / k), with an effective
  force constant k that depends only on the element (a terminal hydrogen is held
  more softly than a heavy atom bonded on several sides). It knows nothing about
  the molecule's normal modes: it samples bond stretches and bends around the
  input geometry, but not torsions or conformer changes, and its distribution is
  not the Boltzmann distribution of any real potential. Geometries with two atoms
  closer than 0.7 times the sum of their covalent radii are rejected. Good enough
  to start a training set; replace it with MD once a model exists.

* :func:`langevin_snapshots` runs Langevin molecular dynamics with a trained
  tridft model (through its ASE calculator) and takes evenly spaced snapshots:
  the usual second round of an active-learning loop. The samples are only as
  good as the model that drives the dynamics.

Lengths are Angstrom, temperatures Kelvin, energies eV.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ase
import numpy as np
from ase.data import covalent_radii
from ase.units import fs, kB

from tridft.errors import InputError, TriDFTError

logger = logging.getLogger(__name__)

# Effective harmonic force constant (eV/Angstrom^2) seen by one atom moved on its own.
# Order-of-magnitude values: a C-H stretch is ~30 eV/A^2 but bends are ~3-5, so a
# terminal H moves more; heavy atoms are held by several bonds. At 500 K they give
# sigma = 0.073 A for H and 0.046 A for C, N, O. Not fitted to anything.
STIFFNESS_EV_A2 = {1: 8.0}
DEFAULT_STIFFNESS_EV_A2 = 20.0
# Two atoms closer than this fraction of the sum of their covalent radii: rejected.
MIN_DISTANCE_FACTOR = 0.7

# Friendly names for ase.build.molecule (which uses formulas: "CH3CH2OH").
ALIASES = {"water": "H2O", "ethanol": "CH3CH2OH", "methanol": "CH3OH", "ammonia": "NH3",
           "methane": "CH4", "benzene": "C6H6", "acetone": "CH3COCH3",
           "formaldehyde": "H2CO", "ethylene": "C2H4", "acetylene": "C2H2"}


def load_molecule(name_or_path: str, index: int = 0) -> ase.Atoms:
    """A molecule from a structure file (its ``index``-th frame) or by name.

    Names are those of ``ase.build.molecule`` (the G2 set: "H2O", "CH3CH2OH", ...)
    plus a few common ones ("water", "ethanol", "benzene").
    """
    path = Path(name_or_path)
    if path.exists():
        from ase.io import read

        try:
            atoms = read(str(path), index=index)
        except Exception as error:  # noqa: BLE001 - any ASE failure means a bad file
            raise InputError(f"cannot read structure {index}: {error}", path=str(path)) from None
    else:
        from ase.build import molecule

        try:
            atoms = molecule(ALIASES.get(name_or_path.lower(), name_or_path))
        except KeyError:
            raise InputError(f"'{name_or_path}' is neither a file nor a molecule name that "
                             "ase.build.molecule knows (e.g. H2O, CH3CH2OH, C6H6, or "
                             f"{', '.join(sorted(ALIASES))})") from None
    if np.any(atoms.pbc):
        raise InputError("periodic structure: the samplers are for molecules",
                         path=str(name_or_path))
    return ase.Atoms(numbers=atoms.numbers, positions=atoms.positions)


def displacement_sigma(numbers, temperature_k: float) -> np.ndarray:
    """Per-atom Gaussian width (Angstrom), (n,): sqrt(kB T / k_element)."""
    stiffness = np.array([STIFFNESS_EV_A2.get(int(z), DEFAULT_STIFFNESS_EV_A2)
                          for z in numbers])
    return np.sqrt(kB * temperature_k / stiffness)


def too_close(numbers, positions, factor: float = MIN_DISTANCE_FACTOR) -> bool:
    """Whether any two atoms are closer than ``factor`` x (sum of covalent radii)."""
    radii = covalent_radii[np.asarray(numbers)]
    distances = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    limits = factor * (radii[:, None] + radii[None, :])
    np.fill_diagonal(distances, np.inf)
    return bool(np.any(distances < limits))


def random_displacements(atoms: ase.Atoms, n: int, temperature_k: float, seed: int = 0,
                         max_tries: int | None = None) -> list[ase.Atoms]:
    """``n`` copies of ``atoms`` with Gaussian displacements (the crude sampler, see above).

    The mass-weighted mean displacement is removed, so the molecule does not drift
    (in ethanol this narrows the heavy atoms' spread by ~15% and widens the H's by ~5%).
    Raises TriDFTError when more than ``max_tries`` (default 100 n) draws are needed.
    """
    _check_request(n, temperature_k)
    rng = np.random.default_rng(seed)
    sigma = displacement_sigma(atoms.numbers, temperature_k)[:, None]
    masses = atoms.get_masses()[:, None]
    max_tries = max_tries or 100 * n
    samples, tries = [], 0
    while len(samples) < n:
        tries += 1
        if tries > max_tries:
            raise TriDFTError(f"only {len(samples)} of {n} geometries without clashing "
                              f"atoms after {max_tries} draws: lower the temperature")
        step = rng.normal(size=atoms.positions.shape) * sigma
        step -= (masses * step).sum(axis=0) / masses.sum()
        positions = atoms.positions + step
        if too_close(atoms.numbers, positions):
            continue
        sample = ase.Atoms(numbers=atoms.numbers, positions=positions)
        sample.info.update(sampler="random_displacements", temperature_K=temperature_k,
                           seed=seed, sample_index=len(samples))
        samples.append(sample)
    logger.info("random displacements: %d accepted of %d draws", n, tries)
    return samples


def langevin_snapshots(atoms: ase.Atoms, model_path: str, n: int, temperature_k: float,
                       seed: int = 0, timestep_fs: float = 0.5, interval: int = 20,
                       equilibration: int = 200, friction_per_fs: float = 0.01
                       ) -> list[ase.Atoms]:
    """``n`` snapshots of Langevin MD with a trained tridft model, every ``interval`` steps.

    The first ``equilibration`` steps are discarded. Raises TriDFTError when the
    dynamics bring two atoms unphysically close (the model is outside its data).
    """
    _check_request(n, temperature_k)
    try:
        from tridft.md.calculator import TriDFTCalculator
    except ImportError as error:
        raise TriDFTError(f"MD sampling needs tridft's ASE calculator: {error}") from None
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    rng = np.random.default_rng(seed)
    system = atoms.copy()
    system.calc = TriDFTCalculator(model_path)
    system.set_constraint(FixCom())  # no drift; ASE's recommended way for Langevin
    MaxwellBoltzmannDistribution(system, temperature_K=temperature_k, rng=rng)
    dynamics = Langevin(system, timestep=timestep_fs * fs, temperature_K=temperature_k,
                        friction=friction_per_fs / fs, fixcm=False, rng=rng)
    dynamics.run(equilibration)
    samples = []
    for index in range(n):
        dynamics.run(interval)
        if too_close(system.numbers, system.positions):
            raise TriDFTError(f"MD with {model_path} brought atoms unphysically close after "
                              f"{dynamics.nsteps} steps: use a lower temperature, or the "
                              "random-displacement sampler")
        sample = ase.Atoms(numbers=system.numbers, positions=system.positions.copy())
        sample.info.update(sampler="langevin", temperature_K=temperature_k, seed=seed,
                           md_step=int(dynamics.nsteps), sample_index=index)
        samples.append(sample)
    return samples


def _check_request(n: int, temperature_k: float) -> None:
    if n < 1:
        raise InputError(f"number of samples must be at least 1, got {n}")
    if not temperature_k > 0:
        raise InputError(f"temperature must be positive, got {temperature_k} K")
