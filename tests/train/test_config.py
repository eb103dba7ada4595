"""Training configuration: validated when read, errors name the key, overrides work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tridft.cli.main import main
from tridft.errors import ConfigError
from tridft.train.config import TrainConfig, config_from_dict, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("values, key", [
    ({"trainig": {"lr": 1e-3}}, "trainig"),
    ({"training": {"lr": "fast"}}, "training.lr"),
    ({"training": {"learning_rate": 1e-3}}, "training.learning_rate"),
    ({"loss": {"balancing": "magic"}}, "loss.balancing"),
    ({"loss": {"weights": {"energy": -1.0}}}, "loss.weights"),
    ({"model": {"featurs": 16}}, "model.featurs"),
    ({"data": {"split": {"validation": -0.1}}}, "data.split.validation"),
])
def test_bad_key_or_value_is_one_line_naming_the_key(values, key):
    with pytest.raises(ConfigError) as error:
        config_from_dict(values)
    message = str(error.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message


def test_overrides_parse_values_as_yaml_and_extend_defaults():
    config = config_from_dict({"training": {"lr": 0.1}},
                              ["training.lr=1.0e-3", "loss.weights.dipole=0.5",
                               "training.time_limit_minutes=null", "loss.pcgrad=true"])
    assert config.training.lr == 1e-3
    assert config.loss.weights == {**TrainConfig().loss.weights, "dipole": 0.5}
    assert set(config.loss.weights) == {"energy", "forces", "conservative_forces",
                                        "polarizability", "dipole"}
    assert config.loss.pcgrad is True
    with pytest.raises(ConfigError, match=r"^--set training\.lrr: unknown key$"):
        config_from_dict({}, ["training.lrr=1"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        config_from_dict({}, ["training.lr"])


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: line \d+: not valid YAML"):
        load_config(path)
    path.write_text("training:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: training\.batch_size: "):
        load_config(path)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.yaml")


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = config_from_dict({"training": {"lr": 5e-4}, "model": {"layers": 2}})
    path = tmp_path / "resolved.yaml"
    path.write_text(config.to_yaml())
    assert load_config(path) == config


def test_example_config_spells_out_the_defaults():
    assert load_config(REPO_ROOT / "configs" / "ethanol.yaml") == TrainConfig()


def test_the_many_molecule_recipe_is_a_valid_configuration():
    """configs/qm7b.yaml (docs/benchmarks.md) stays loadable as options are renamed."""
    config = load_config(REPO_ROOT / "configs" / "qm7b.yaml")
    assert (config.model.dipole_charges, config.loss.kind) == ("equilibrated", "huber")
    assert config.data.train.endswith("qm7b_ccsd_alpha_mu_1000.extxyz")


def test_cli_reports_config_errors_in_one_line_without_traceback(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  lr: 1.0e-3\n  gradient_clip: 5\n")
    assert main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"tridft train: error: {path}: "
                           f"training.gradient_clip: unknown key")
    assert main(["train", str(path), "--set", "training.lr=abc"]) == 1
    assert "Traceback" not in capsys.readouterr().err
