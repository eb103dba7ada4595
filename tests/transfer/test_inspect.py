"""Inspecting the latent: KL per channel, attribution by ablation, per-atom contributions."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch

from tests.physics.helpers import assert_close
from tests.transfer.helpers import batch_of, ethanol_records, tiny_model
from tridft.transfer.inspect import (UNUSED_KL, atomic_contributions, inspect_latent,
                                     write_inspection)


@pytest.fixture(scope="module")
def model():
    """A model whose scalar channel 0 is silenced (posterior = prior) and that the energy
    head does not read through channel 1."""
    model = tiny_model(seed=7)
    with torch.no_grad():
        bottleneck = model.bottleneck
        bottleneck.to_mean.weight[0].zero_()
        bottleneck.to_mean.bias[0] = 0.0
        bottleneck.to_log_var.weight[0].zero_()
        bottleneck.to_log_var.bias[0] = 0.0
        model.heads["energy"].mlp[0].weight[:, 1] = 0.0
    return model


@pytest.fixture(scope="module")
def report(model):
    return inspect_latent(model, ethanol_records(12))


def test_a_channel_equal_to_the_prior_carries_no_information(report):
    assert report.kl[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(report.kl[1:] > UNUSED_KL)
    assert report.unused_channels() == ["s0"]
    assert report.kl_order()[-1] == 0


def test_attribution_finds_the_channels_each_head_reads(report):
    energy = report.heads.index("energy")
    rows = {name: i for i, name in enumerate(report.channels)}
    # The energy head reads latent scalars only, and not channel 1.
    assert report.attribution[rows["s1"], energy] == 0.0
    for vector in (c for c in report.channels if c.startswith("v")):
        assert report.attribution[rows[vector], energy] == 0.0
    assert report.attribution[rows["s2"], energy] > 1e-3
    # The force and polarizability heads do read the vector channels.
    for head in ("forces", "polarizability"):
        assert report.attribution[rows["v0"]:, report.heads.index(head)].max() > 1e-3
    assert report.attribution.shape == (len(report.channels), len(report.heads))


def test_per_atom_contributions_add_up_to_the_predictions(model):
    record = ethanol_records(3)[2]
    atoms = atomic_contributions(model, record)
    with torch.no_grad():
        outputs = model(batch_of(model, [record]))
    energies = torch.as_tensor(atoms.arrays["atomic_energy"])
    tensors = torch.as_tensor(atoms.arrays["atomic_polarizability"]).reshape(-1, 3, 3)
    assert_close(energies.sum(), outputs["energy"][0], 1e-12, "energy")
    assert_close(tensors.sum(0), outputs["polarizability"][0], 1e-12, "polarizability")
    iso = torch.as_tensor(atoms.arrays["atomic_polarizability_iso"])
    assert_close(iso, tensors.diagonal(dim1=1, dim2=2).mean(-1), 1e-12, "isotropic part")
    assert float(iso.std()) > 0  # carbon, oxygen and hydrogen differ


def test_the_files_can_be_read_back(model, report, tmp_path):
    record = ethanol_records(1)[0]
    paths = write_inspection(report, atomic_contributions(model, record), tmp_path / "eth")
    json_path, png_path, xyz_path = paths
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = ase.io.read(xyz_path)
    assert back.arrays["atomic_polarizability"].shape == (record.n_atoms, 9)
    np.testing.assert_allclose(back.positions, record.positions)
    import json
    data = json.loads(json_path.read_text())
    assert data["unused_channels"] == ["s0"]
    assert set(data["attribution"]["s3"]) == set(report.heads)
