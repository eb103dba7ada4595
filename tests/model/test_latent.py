"""The latent: deterministic at inference, sampled while training, and reusable when frozen."""

import pytest
import torch

from tests.physics.helpers import ethanol, model_dtype, perturbed_model, predict, water_box
from tridft.data.batch import collate
from tridft.model.bottleneck import Bottleneck, IdentityBottleneck
from tridft.model.heads import EnergyHead


def batch_for(model, records):
    return collate(records, model.cutoff, dtype=model_dtype(model))


@pytest.fixture(scope="module")
def model():
    return perturbed_model(seed=11)


@pytest.fixture(scope="module")
def batch(model):
    return batch_for(model, [ethanol(0), ethanol(1), water_box()])


def test_the_latent_is_deterministic_in_eval_mode(model, batch):
    model.eval()
    first, second = model.latent(batch), model.latent(batch)
    assert torch.equal(first.scalars, second.scalars)
    assert torch.equal(first.scalars, first.mean)  # inference uses the posterior mean
    assert torch.equal(first.vectors, second.vectors)


def test_the_latent_scalars_are_sampled_in_train_mode(model, batch):
    model.train()
    try:
        first, second = model.latent(batch), model.latent(batch)
    finally:
        model.eval()
    assert not torch.equal(first.scalars, second.scalars)
    assert torch.equal(first.mean, second.mean)
    assert torch.equal(first.vectors, second.vectors)  # only the scalars are variational
    # The noise is N(0, exp(log_var)): standardised, it has unit variance.
    standardised = ((first.scalars - first.mean) / torch.exp(0.5 * first.log_var)).detach()
    assert abs(float(standardised.mean())) < 0.15
    assert 0.8 < float(standardised.var()) < 1.2


def test_a_sample_is_never_wider_than_the_prior(model, batch):
    """Whatever the log-variance layer outputs, sampling noise stays at most N(0, 1):
    a wide posterior, amplified by the heads' products of latent features, once made
    a loss of 3e14 (model/bottleneck.py)."""
    layer = model.bottleneck.to_log_var
    saved = layer.bias.detach().clone()
    torch.manual_seed(0)
    model.train()
    try:
        with torch.no_grad():
            layer.bias.fill_(25.0)
        latent = model.latent(batch)
    finally:
        model.eval()
        with torch.no_grad():
            layer.bias.copy_(saved)
    assert latent.log_var.max() <= 0.0
    noise = latent.scalars - latent.mean
    assert 0.9 < float(noise.std()) < 1.1


def test_kl_per_channel_is_the_gaussian_kl(model, batch):
    latent = model.latent(batch)
    kl = latent.kl_per_channel().detach()
    assert kl.shape == (batch.numbers.shape[0], model.config.latent_scalars)
    mean, log_var = latent.mean.detach(), latent.log_var.detach()
    # KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1 - ln s^2) / 2, and it is >= 0.
    expected = 0.5 * (mean**2 + log_var.exp() - 1 - log_var)
    torch.testing.assert_close(kl, expected)
    assert float(kl.min()) >= 0 and float(kl.max()) > 0
    assert torch.equal(predict(model, [ethanol(0)])["latent_kl"],
                       model.latent(batch_for(model, [ethanol(0)])).kl_per_channel().detach())


def test_without_variational_scalars_there_is_no_kl_and_no_sampling():
    model = perturbed_model(seed=12, variational=False)
    batch = batch_for(model, [ethanol(0)])
    model.train()
    first, second = model.latent(batch), model.latent(batch)
    assert first.log_var is None
    assert torch.equal(first.scalars, second.scalars)
    assert torch.count_nonzero(model(batch)["latent_kl"]) == 0


def test_without_compression_the_latent_is_the_backbone_output():
    """latent_scalars = latent_vectors = None: the plain shared-backbone multi-head model."""
    model = perturbed_model(seed=13, latent_scalars=None, latent_vectors=None)
    assert isinstance(model.bottleneck, IdentityBottleneck)
    assert not any(True for _ in model.bottleneck.parameters())
    batch = batch_for(model, [ethanol(0), water_box()])
    features = model.backbone(batch)
    latent = model.latent(batch)
    assert torch.equal(latent.scalars, features.scalars)
    assert torch.equal(latent.vectors, features.vectors)
    # Heads read the full backbone width.
    assert model.heads["energy"].mlp[0].in_features == model.config.features
    # Training and inference give the same outputs: nothing is sampled, the KL is zero.
    train_outputs = model.train()(batch)
    eval_outputs = model.eval()(batch)
    for key in ("energy", "forces", "polarizability"):
        assert torch.equal(train_outputs[key], eval_outputs[key])
    assert torch.count_nonzero(train_outputs["latent_kl"]) == 0


def test_compression_must_be_all_or_nothing():
    with pytest.raises(ValueError, match="latent_scalars and latent_vectors"):
        perturbed_model(latent_scalars=None, latent_vectors=4)


def test_a_new_head_trains_on_a_frozen_latent():
    """Freeze backbone + bottleneck, attach a head, fit a new property: only the head moves."""
    model = perturbed_model(seed=14)
    for part in (model.backbone, model.bottleneck):
        part.requires_grad_(False)
    frozen = {name: value.clone() for name, value in model.state_dict().items()
              if name.startswith(("backbone.", "bottleneck.", "heads.energy."))}
    config = model.config
    head = EnergyHead("gyration", config.latent_scalars, config.latent_vectors,
                      config.head_hidden).to(torch.float64)
    model.add_head(head)

    records = [ethanol(i) for i in range(4)]
    batch = batch_for(model, records)
    # A geometric property the latent must encode: the radius of gyration, Angstrom.
    target = torch.tensor([float(((r.positions - r.positions.mean(0)) ** 2).sum(1).mean() ** 0.5)
                           for r in records], dtype=torch.float64)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    model.train()
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = ((model(batch)["gyration"] - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()

    assert losses[-1] < 0.1 * losses[0]
    for name, value in model.state_dict().items():
        if name in frozen:
            assert torch.equal(value, frozen[name]), f"{name} changed"
    # The frozen parts were not even differentiated.
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.bottleneck.parameters())


def test_rank2_latent_channels_need_rank2_backbone_channels():
    from pydantic import ValidationError

    from tridft.model.config import ModelConfig

    with pytest.raises(ValidationError, match="latent_tensors needs rank-2 channels"):
        ModelConfig(tensor_channels=0, latent_tensors=4)
    config = ModelConfig(tensor_channels=8, latent_tensors=4)
    assert config.latent_tensor_width == 4
    assert ModelConfig(tensor_channels=8, latent_tensors=4, latent_scalars=None,
                       latent_vectors=None).latent_tensor_width == 8


def test_rank2_latent_channels_reach_the_polarizability_only_when_asked():
    """Rank-2 backbone channels alone leave the latent as it was; latent_tensors adds
    gated tensors that the polarizability head weights, and they change its output."""
    plain = perturbed_model(seed=12, tensor_channels=4, latent_tensors=0)
    batch = batch_for(plain, [ethanol(0)])
    assert plain.latent(batch).tensors is None
    model = perturbed_model(seed=12, tensor_channels=4, latent_tensors=2)
    latent = model.latent(batch)
    assert latent.tensors.shape == (9, 3, 3, 2)
    assert torch.allclose(latent.tensors, latent.tensors.transpose(1, 2))
    assert float(latent.tensors.diagonal(dim1=1, dim2=2).sum(-1).abs().max()) < 1e-12
    before = model(batch)["polarizability"].detach()
    with torch.no_grad():
        model.heads["polarizability"].tensor_weights.weight.zero_()
        model.heads["polarizability"].tensor_weights.bias.zero_()
    after = model(batch)["polarizability"].detach()
    assert float((after - before).abs().max()) > 1e-6 * float(before.abs().max())
