"""A batch is only bookkeeping: N structures together = N structures one by one."""

import pytest
import torch

from tests.physics.helpers import (BACKBONES, OUTPUT_KEYS, assert_close, assert_nontrivial,
                                   dimer, ethanol, model_dtype, perturbed_model, predict,
                                   rocksalt, silicon, water_box)
from tridft.data.batch import collate

TOLERANCE = 1e-10


@pytest.fixture(scope="module", params=list(BACKBONES))
def model(request):
    return perturbed_model(seed=9, **BACKBONES[request.param])


def mixed_structures():
    """Molecules and periodic cells of different sizes, and one isolated pair of atoms."""
    return [ethanol(0), silicon(), dimer(9.0), water_box(), ethanol(1), rocksalt()]


def test_a_batch_equals_single_calls(model):
    records = mixed_structures()
    batched = predict(model, records)
    singles = [predict(model, [record]) for record in records]
    assert_nontrivial(batched)
    for key in OUTPUT_KEYS:  # per-structure outputs stack, per-atom outputs concatenate
        assert_close(batched[key], torch.cat([s[key] for s in singles]), TOLERANCE, key)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_no_gradient_flows_between_structures(model, mode):
    records = mixed_structures()
    model.train(mode == "train")
    try:
        batch = collate(records, model.cutoff, dtype=model_dtype(model))
        batch.positions.requires_grad_(True)
        outputs = model(batch, forces="direct")
    finally:
        model.eval()
    first = batch.structure_index == 0
    for key in ("energy", "polarizability"):
        (gradient,) = torch.autograd.grad(outputs[key][0].sum(), batch.positions,
                                          retain_graph=True)
        assert float(gradient[first].abs().max()) > 0, f"{key} must depend on its own atoms"
        assert torch.count_nonzero(gradient[~first]) == 0, f"{key} of structure 0 leaks"
    # Direct forces on structure 0's atoms depend only on structure 0's atoms.
    (gradient,) = torch.autograd.grad(outputs["forces"][first].sum(), batch.positions)
    assert torch.count_nonzero(gradient[~first]) == 0, "direct forces of structure 0 leak"
