"""An atom crossing the cutoff: every output is continuous and the energy flattens out.

The polynomial envelope vanishes with its first two derivatives at the cutoff, so
near it the interaction energy behaves like (cutoff - r)^3 and the force like (cutoff - r)^2.
"""

import numpy as np
import pytest
import torch

from tests.physics.helpers import BACKBONES, assert_close, dimer, perturbed_model, predict

OUTPUTS = ("energy", "forces", "conservative_forces", "polarizability")


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=8, **BACKBONES[request.param])


def dimer_scan(model, points: int):
    """Distances cutoff - 0.05 ... cutoff + 0.05 A (``points`` of them) and the outputs
    of an O-H dimer at each, one row per distance."""
    distances = model.cutoff + np.linspace(-0.05, 0.05, points)
    outputs = predict(model, [dimer(d) for d in distances], forces="both")
    per_structure = {
        "energy": outputs["energy"],
        "polarizability": outputs["polarizability"],
        "forces": outputs["forces"].reshape(-1, 2, 3),
        "conservative_forces": outputs["conservative_forces"].reshape(-1, 2, 3),
    }
    return distances, per_structure


@pytest.fixture(scope="module")
def scan(model):
    """The dimer scan in steps of 1 mA."""
    return dimer_scan(model, 101)


def test_beyond_the_cutoff_the_atoms_are_isolated(model, scan):
    distances, outputs = scan
    beyond = distances >= model.cutoff
    isolated = predict(model, [dimer(50.0)], forces="both")
    assert_close(outputs["energy"][beyond], isolated["energy"].expand(int(beyond.sum())), 1e-12,
                 "energy beyond the cutoff")
    for key in ("forces", "conservative_forces"):
        assert float(outputs[key][beyond].abs().max()) == 0.0, key


def interaction(model, outputs) -> dict:
    """Per distance, max |output(r) - output(isolated atoms)| for each output."""
    isolated = predict(model, [dimer(50.0)], forces="both")
    isolated["forces"] = isolated["forces"].reshape(1, 2, 3)
    isolated["conservative_forces"] = isolated["conservative_forces"].reshape(1, 2, 3)
    return {key: (outputs[key] - isolated[key]).reshape(len(outputs[key]), -1).abs().max(dim=1).values
            for key in OUTPUTS}


def test_outputs_approach_the_isolated_values_continuously(model, scan):
    """50 mA inside the cutoff the atoms interact; 1 mA inside, almost not at all."""
    distances, outputs = scan
    inside = np.flatnonzero(distances < model.cutoff)
    first, last = inside[0], inside[-1]
    for key, size in interaction(model, outputs).items():
        assert size[first] > 0, f"{key}: no interaction at all (vacuous test)"
        # Smooth: ~ (1/50)^3 for the energy, (1/50)^2 for forces; a hard cutoff would give ~1.
        assert size[last] < 1e-3 * size[first], \
            f"{key}: {float(size[last]):.2e} at 1 mA vs {float(size[first]):.2e} at 50 mA"


def test_no_output_jumps_between_neighbouring_distances(model, scan):
    """Halving the distance step halves the largest one-step change of every output.

    A continuous output changes by about its slope times the step; a jump (a hard
    cutoff, a switch) would change by the same amount however fine the steps are.
    """
    distances, outputs = scan
    step = distances[1] - distances[0]
    fine_distances, fine = dimer_scan(model, 201)  # steps of 0.5 mA
    for key in OUTPUTS:
        coarse_jump = outputs[key].reshape(len(distances), -1).diff(dim=0).abs().max()
        fine_jump = fine[key].reshape(len(fine_distances), -1).diff(dim=0).abs().max()
        assert float(coarse_jump) > 0, f"{key}: no change at all (vacuous test)"
        assert float(fine_jump) <= 0.6 * float(coarse_jump), \
            f"{key}: largest change {float(fine_jump):.2e} per 0.5 mA step, " \
            f"{float(coarse_jump):.2e} per 1 mA step"
    # |dE| <= |dE/dr| dr: the conservative force bounds the slope of the energy.
    force_scale = float(outputs["conservative_forces"].abs().max())
    assert float(outputs["energy"].diff().abs().max()) <= 2 * force_scale * step


def test_the_energy_derivative_vanishes_at_the_cutoff(model):
    """-dE/dr falls off like (cutoff - r)^2: halving the distance to the cutoff quarters it."""
    # Close enough to the cutoff that the next order, (cutoff - r)^3, is a few per cent.
    gaps = np.array([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    outputs = predict(model, [dimer(model.cutoff - gap) for gap in gaps],
                      forces="conservative")
    magnitudes = outputs["conservative_forces"].reshape(-1, 2, 3)[:, 1].norm(dim=-1).numpy()
    assert np.all(magnitudes > 0)
    ratios = magnitudes[:-1] / magnitudes[1:]
    np.testing.assert_allclose(ratios, 4.0, rtol=0.05)
