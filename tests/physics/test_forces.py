"""Conservative forces are exactly -dE/dR: compare with central finite differences."""

import pytest

from tests.physics.helpers import (BACKBONES, assert_close, ethanol, finite_difference_forces,
                                   perturbed_model, predict, silicon, water_box)

STEP = 1e-5  # Angstrom; central differences err by O(h^2), round-off by O(eps E / h)
TOLERANCE = 1e-6


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=7, **BACKBONES[request.param])


@pytest.mark.parametrize("structure", [ethanol, silicon, water_box],
                         ids=["ethanol", "silicon", "water_box"])
def test_conservative_forces_match_finite_differences(model, structure):
    record = structure()
    analytic = predict(model, [record], forces="conservative")["conservative_forces"]
    numeric = finite_difference_forces(model, record, STEP)
    scale = float(analytic.abs().max())
    assert scale > 1e-3, "forces too small for a meaningful comparison"
    assert_close(analytic / scale, numeric / scale, TOLERANCE, "conservative forces")


def test_conservative_mode_skips_the_direct_head(model):
    outputs = predict(model, [ethanol()], forces="conservative")
    assert "forces" not in outputs and "conservative_forces" in outputs
    outputs = predict(model, [ethanol()], forces="direct")
    assert "conservative_forces" not in outputs and "forces" in outputs
