"""E(3) equivariance: rotations and rotation-inversions, molecules and periodic cells."""

import numpy as np
import pytest

from tests.physics.helpers import (BACKBONES, assert_equivariant, ethanol, perturbed_model,
                                   random_orthogonal, rocksalt, silicon, water_box)

STRUCTURES = {
    "ethanol": ethanol,
    "water_box_192": lambda: water_box(per_side=4),
    "rocksalt_small_cell": rocksalt,
    "silicon_oblique_cell": silicon,
}


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=3, **BACKBONES[request.param])


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotation_inversion"])
@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_outputs_transform_with_the_structure(model, name, improper):
    rng = np.random.default_rng([sorted(STRUCTURES).index(name), improper])
    rotation = random_orthogonal(rng, improper=improper)
    assert np.isclose(np.linalg.det(rotation), -1.0 if improper else 1.0)
    assert_equivariant(model, STRUCTURES[name](), rotation, translation=rng.normal(size=3))


def test_outputs_transform_under_a_mirror_plane(model):
    """A mirror plane x -> (I - 2 n n^T) x, the simplest improper operation."""
    normal = np.array([1.0, -2.0, 0.5]) / np.linalg.norm([1.0, -2.0, 0.5])
    mirror = np.eye(3) - 2 * np.outer(normal, normal)
    assert_equivariant(model, ethanol(1), mirror)
    assert_equivariant(model, silicon(), mirror)
