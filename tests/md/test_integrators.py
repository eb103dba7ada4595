"""Multiple time steps: the direct head every step, corrected to -dE/dR every k steps."""

import numpy as np
import pytest

from tridft.md.calculator import TriDFTCalculator
from tridft.md.dynamics import MDSettings, run_md
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
        friction: float = 0.0):
    atoms = ethanol_atoms()
    atoms.calc = calculator
    settings = MDSettings(ensemble=ensemble, temperature_K=300.0, timestep_fs=0.5, steps=steps,
                          interval=1, seed=0, correction_every=every, friction_per_fs=friction)
    path = tmp_path / f"{ensemble}_{every}_{calculator.force_source}.extxyz"
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
                          friction_per_fs=0.1, interval=1, seed=3, correction_every=2)
    run_md(atoms, settings, tmp_path / "nvt.extxyz", initialize=False)
    temperatures = series(read_trajectory(tmp_path / "nvt.extxyz"), "temperature_K")
    assert temperatures[0] == 0.0
    assert np.mean(temperatures[300:]) == pytest.approx(300.0, rel=0.25)


def test_multiple_time_steps_refuse_npt():
    from tridft.errors import InputError

    with pytest.raises(InputError, match="NVE or NVT"):
        MDSettings(ensemble="npt", correction_every=2)
