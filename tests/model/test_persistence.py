"""Model files: plain data that round-trips exactly, and never code that runs on loading."""

import os

import pytest
import torch

from tests.physics.helpers import BACKBONES, ethanol, model_dtype, perturbed_model, water_box
from tridft.cli.main import main
from tridft.data.batch import collate
from tridft.errors import CheckpointError
from tridft.model.heads import EnergyHead
from tridft.model.persistence import load_model, model_to_dict, save_model


def outputs_of(model, records):
    batch = collate(records, model.cutoff, dtype=model_dtype(model))
    return {key: value.detach() for key, value in model(batch, forces="both").items()}


class Payload:
    """Any object that is not plain data. Unpickling it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_give_identical_outputs(tmp_path, dtype, backbone):
    model = perturbed_model(seed=31, dtype=dtype, **BACKBONES[backbone])
    config = model.config
    extra = EnergyHead("gap", config.latent_scalars, config.latent_vectors, config.head_hidden)
    model.add_head(extra.to(model_dtype(model)))
    with torch.no_grad():  # statistics buffers must travel too
        model.heads["energy"].reference_energies[6] = -1030.5
        model.heads["polarizability"].shift.fill_(0.7)
    model.elements = [1, 6, 8]
    path = tmp_path / "model.pt"
    save_model(model, path, metadata={"note": "round trip", "epochs": 3})

    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.elements == [1, 6, 8]
    assert loaded.metadata == {"note": "round trip", "epochs": 3}
    assert list(loaded.heads) == list(model.heads)
    records = [ethanol(0), water_box()]
    before, after = outputs_of(model, records), outputs_of(loaded, records)
    assert set(after) == set(before) and "gap" in after
    for key in before:
        assert torch.equal(after[key], before[key]), key


def test_a_model_saved_before_message_normalization_keeps_its_mean_normalisation(tmp_path):
    model = perturbed_model(seed=5)
    with torch.no_grad():
        model.backbone.average_neighbors.fill_(8.0)  # a normalisation that matters
    payload = model_to_dict(model)
    del payload["config"]["message_normalization"]  # as files of earlier versions
    path = tmp_path / "old.pt"
    torch.save(payload, path)

    loaded = load_model(path)
    assert loaded.config.message_normalization == "mean"
    mean_model = perturbed_model(seed=5)
    mean_model.backbone.normalization = "mean"
    with torch.no_grad():
        mean_model.backbone.average_neighbors.fill_(8.0)
    records = [ethanol(0)]
    expected = outputs_of(mean_model.eval(), records)["energy"]
    assert torch.allclose(outputs_of(loaded, records)["energy"], expected)
    assert not torch.allclose(outputs_of(model.eval(), records)["energy"], expected)


def test_a_training_checkpoint_that_wraps_the_model_loads(tmp_path):
    model = perturbed_model(seed=32)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model_to_dict(model), "optimizer": {}, "epoch": 4}, path)
    loaded = load_model(path)
    assert torch.equal(outputs_of(loaded, [ethanol()])["energy"],
                       outputs_of(model, [ethanol()])["energy"])


def test_a_file_with_python_objects_is_refused_without_running_them(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({**model_to_dict(perturbed_model(seed=33)), "metadata": {"x": Payload(marker)}},
               path)
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and "refused" in message
    assert not marker.exists()


def test_the_command_line_reports_a_refused_file_in_one_line(tmp_path, capsys):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "tridft-model", "payload": Payload(marker)}, path)
    assert main(["info", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("tridft info: error:") and "refused" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not marker.exists()


def test_the_command_line_describes_a_saved_model(tmp_path, capsys):
    model = perturbed_model(seed=34)
    path = tmp_path / "model.pt"
    save_model(model, path)
    assert main(["info", str(path)]) == 0
    parameters = sum(p.numel() for p in model.parameters())
    assert f"{parameters:,}" in capsys.readouterr().out


@pytest.mark.parametrize("content, reason", [
    (None, "no such file"),
    ({"weights": torch.zeros(3)}, "not a tridft model file"),
])
def test_missing_and_foreign_files_are_one_line_errors(tmp_path, content, reason):
    path = tmp_path / "model.pt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=reason) as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


def test_a_failed_save_leaves_the_previous_file_and_no_debris(tmp_path):
    model = perturbed_model(seed=35)
    path = tmp_path / "model.pt"
    save_model(model, path, metadata={"version": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):
        save_model(model, path, metadata={"unpicklable": lambda: None})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]
