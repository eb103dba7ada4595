"""Size extensivity: non-interacting pieces add up."""

import numpy as np
import pytest
from dataclasses import replace

from tests.physics.helpers import (BACKBONES, assert_close, ethanol, perturbed_model, predict,
                                   side_by_side, transformed, random_orthogonal)

TOLERANCE = 1e-9


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=6, **BACKBONES[request.param])


def test_two_distant_copies_have_twice_the_energy_and_polarizability(model):
    single = ethanol(0)
    pair = side_by_side(single, single, gap=model.cutoff + 1.0)
    one, two = predict(model, [single]), predict(model, [pair])
    assert_close(two["energy"], 2 * one["energy"], TOLERANCE, "energy")
    assert_close(two["polarizability"], 2 * one["polarizability"], TOLERANCE, "polarizability")
    for key in ("forces", "conservative_forces"):
        assert_close(two[key], one[key].repeat(2, 1), TOLERANCE, key)


def test_distant_different_molecules_add_up(model):
    """Two different conformers, one of them rotated: the sum of the two separate predictions."""
    first = ethanol(1)
    second = transformed(ethanol(2), random_orthogonal(np.random.default_rng(2)))
    pair = side_by_side(first, second, gap=model.cutoff + 0.5)
    separate = predict(model, [first, second])
    together = predict(model, [pair])
    assert_close(together["energy"], separate["energy"].sum(0, keepdim=True), TOLERANCE,
                 "energy")
    assert_close(together["polarizability"], separate["polarizability"].sum(0, keepdim=True),
                 TOLERANCE, "polarizability")


def test_copies_within_the_cutoff_interact(model):
    """The same pair closer than the cutoff is not 2x: the extensivity test could fail."""
    single = ethanol(0)
    close_pair = side_by_side(single, single, gap=2.5)
    two = predict(model, [close_pair], forces="direct")
    one = predict(model, [single], forces="direct")
    assert abs(float(two["energy"] - 2 * one["energy"])) > 1e-6
