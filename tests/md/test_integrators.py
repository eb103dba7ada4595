"""Multiple time steps: a fast force every step (valence springs or the direct head),
corrected to -dE/dR every k steps."""

import numpy as np
import pytest
from ase import units as ase_units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list

from tridft.md.calculator import TriDFTCalculator
from tridft.md.dynamics import MDSettings, initial_velocities, run_md
from tridft.md.integrators import MultipleTimeStepVerlet
from tridft.md.reference import ValenceSprings
from tridft.md.trajectory import read_trajectory, series
from tridft.model.model import FORCES
from tests.md.helpers import ethanol_atoms, perturbed_model


@pytest.fixture(scope="module")
def model():
    return perturbed_model(seed=1)


class HalfDirectForces(TriDFTCalculator):
    """A calculator whose 'direct head' is half of -dE/dR: a fast force that is badly
    wrong but smooth, as a trained direct head's error is."""

    def _outputs(self, batch, stress):
        source = self.force_source
        self._force_source = "both"
        outputs = super()._outputs(batch, stress)
        self._force_source = source
        outputs[FORCES] = 0.5 * outputs["conservative_forces"]
        if source == "direct":
            outputs.pop("conservative_forces")
        return outputs


def run(calculator, tmp_path, every: int, ensemble: str = "nve", steps: int = 200,
        friction: float = 0.0, fast: str = "direct"):
    atoms = ethanol_atoms()
    atoms.calc = calculator
    settings = MDSettings(ensemble=ensemble, temperature_K=300.0, timestep_fs=0.5, steps=steps,
                          interval=every if fast == "springs" else 1, seed=0,
                          correction_every=every, friction_per_fs=friction, fast_forces=fast)
    path = tmp_path / f"{ensemble}_{every}_{calculator.force_source}_{fast}.extxyz"
    run_md(atoms, settings, path)
    return atoms, read_trajectory(path)


def test_one_step_between_corrections_is_velocity_verlet_on_minus_dE_dR(model, tmp_path):
    conservative, _ = run(TriDFTCalculator(model, forces="conservative"), tmp_path, every=0,
                          steps=50)
    corrected, _ = run(TriDFTCalculator(model, forces="direct"), tmp_path, every=1, steps=50)
    np.testing.assert_allclose(corrected.positions, conservative.positions, atol=1e-9)
    np.testing.assert_allclose(corrected.get_velocities(), conservative.get_velocities(),
                               atol=1e-9)


def test_corrections_restore_the_energy_that_wrong_fast_forces_do_not_conserve(model, tmp_path):
    _, direct = run(HalfDirectForces(model, forces="direct"), tmp_path, every=0)
    _, corrected = run(HalfDirectForces(model, forces="direct"), tmp_path, every=2)
    kinetic = series(corrected, "kinetic_energy")
    # Half the true force: the true total energy is not conserved at all ...
    assert series(direct, "total_energy").std() > 0.1 * kinetic.std()
    # ... with a correction every second step it is, as well as by velocity Verlet.
    assert series(corrected, "total_energy").std() < 1e-2 * kinetic.std()


def test_multiple_time_steps_with_friction_reach_the_target_temperature(model, tmp_path):
    atoms = ethanol_atoms()
    atoms.calc = TriDFTCalculator(model, forces="direct")
    atoms.set_velocities(np.zeros((len(atoms), 3)))
    settings = MDSettings(ensemble="nvt", temperature_K=300.0, timestep_fs=0.5, steps=600,
                          friction_per_fs=0.1, interval=1, seed=3, correction_every=2,
                          fast_forces="direct")
    run_md(atoms, settings, tmp_path / "nvt.extxyz", initialize=False)
    temperatures = series(read_trajectory(tmp_path / "nvt.extxyz"), "temperature_K")
    assert temperatures[0] == 0.0
    assert np.mean(temperatures[300:]) == pytest.approx(300.0, rel=0.25)


def test_multiple_time_steps_refuse_npt():
    from tridft.errors import InputError

    with pytest.raises(InputError, match="NVE or NVT"):
        MDSettings(ensemble="npt", correction_every=2)


def test_springs_with_a_correction_every_step_are_velocity_verlet(model, tmp_path):
    conservative, _ = run(TriDFTCalculator(model, forces="conservative"), tmp_path, every=0,
                          steps=50)
    springs, _ = run(TriDFTCalculator(model), tmp_path, every=1, steps=50, fast="springs")
    np.testing.assert_allclose(springs.positions, conservative.positions, atol=1e-9)
    np.testing.assert_allclose(springs.get_velocities(), conservative.get_velocities(),
                               atol=1e-9)


class SpringMolecule(Calculator):
    """A stand-in for a trained model that holds ethanol together: stiff springs on the
    bonds (30 eV/A^2: C-H stretches near 3000 cm^-1) and soft ones between all other
    pairs. (The untrained test models let the molecule fly apart.)"""

    implemented_properties = ["energy", "forces"]
    force_source = "conservative"

    def __init__(self, atoms):
        super().__init__()
        bonded = bonds(atoms)
        first, second = np.triu_indices(len(atoms), 1)
        others = [(i, j) for i, j in zip(first, second) if (i, j) not in set(zip(*bonded))]
        self.parts = [springs(atoms, bonded, 30.0, anharmonicity=2.2),
                      springs(atoms, tuple(np.array(others).T), 2.0, anharmonicity=1.0)]
        self.evaluations = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.evaluations += 1
        positions = self.atoms.positions
        self.results = {"energy": sum(part.energy(positions) for part in self.parts),
                        "forces": sum(part.forces(positions) for part in self.parts)}


def bonds(atoms) -> tuple[np.ndarray, np.ndarray]:
    first, second = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    return first[first < second], second[first < second]


def springs(atoms, pairs, constant: float, anharmonicity: float = 1.9,
            stretch: float = 1.0) -> ValenceSprings:
    first, second = pairs
    lengths = np.linalg.norm(atoms.positions[second] - atoms.positions[first], axis=1)
    return ValenceSprings(first, second, np.zeros((len(first), 3)), stretch * lengths,
                          np.full(len(first), constant), np.full(len(first), anharmonicity),
                          len(atoms))


def total_energies(every: int, timestep_fs: float,
                   duration_fs: float = 400.0) -> tuple[np.ndarray, int]:
    """Total energies (eV) of NVE ethanol on SpringMolecule, every ``every`` steps of
    springs 20 % too soft and 1 % too long, or velocity Verlet (every = 0); and how many
    times the stand-in model was evaluated."""
    atoms = ethanol_atoms()
    atoms.calc = SpringMolecule(atoms)
    initial_velocities(atoms, 300.0, seed=0)
    timestep = timestep_fs * ase_units.fs
    if every:
        reference = springs(atoms, bonds(atoms), 24.0, stretch=1.01)
        dynamics = MultipleTimeStepVerlet(atoms, timestep, every=every, reference=reference)
    else:
        dynamics = VelocityVerlet(atoms, timestep)
    totals = []
    dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=max(every, 1))
    dynamics.run(int(round(duration_fs / timestep_fs)))
    return np.array(totals), atoms.calc.evaluations


def test_springs_let_the_model_be_evaluated_every_fourth_step():
    """The springs take the bond vibrations out of the kicks: corrections every 2 fs
    conserve the energy better than velocity Verlet with 2 fs steps, which has to
    follow the C-H stretches with them, and nearly as well as 0.5 fs steps."""
    springs_2fs, evaluations = total_energies(every=4, timestep_fs=0.5)
    verlet_2fs, _ = total_energies(every=0, timestep_fs=2.0)
    verlet_half_fs, _ = total_energies(every=0, timestep_fs=0.5)
    assert evaluations == 800 // 4 + 1  # the model only at the corrections (and the start)
    assert springs_2fs.std() < 0.6 * verlet_2fs.std()
    assert springs_2fs.std() < 15 * verlet_half_fs.std()
    assert springs_2fs.std() < 1e-2  # eV, against ~0.35 eV of kinetic energy


def test_springs_need_a_writing_interval_that_is_a_multiple_of_k():
    from tridft.errors import InputError

    with pytest.raises(InputError, match="multiple"):
        MDSettings(ensemble="nve", correction_every=4, interval=2)
    assert MDSettings(ensemble="nve", correction_every=4, interval=8).observed_every == 4
    assert MDSettings(ensemble="nve", correction_every=4, interval=2,
                      fast_forces="direct").observed_every == 1
