"""Training and inference defaults that keep numbers honest."""

from __future__ import annotations

import numpy as np
import pytest

from tridft.data.io import read_structures
from tridft.errors import ConfigError, InputError, TriDFTError
from tridft.md.calculator import TriDFTCalculator
from tridft.model.persistence import load_model, trained_force_source
from tridft.train.config import config_from_dict
from tridft.train.evaluate import evaluate, predict
from tridft.train.limits import shared_elapsed
from tridft.train.loop import train

from .tiny import tiny_config, write_ethanol_subset


@pytest.fixture(scope="module")
def conservative_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conservative")
    data = write_ethanol_subset(folder / "data.extxyz", 12)
    config = tiny_config(folder / "run", data, training={"max_steps": 2,
                                                         "force_source": "conservative"})
    return train(config, progress=False), data


def test_inference_defaults_to_the_forces_the_model_was_trained_for(conservative_run):
    result, data = conservative_run
    model = load_model(result.best_model_path)
    records = read_structures(data)[:3]
    assert trained_force_source(model) == "conservative"
    default = predict(model, records)
    conservative = predict(model, records, forces="conservative")
    direct = predict(model, records, forces="direct")
    assert np.allclose(default[0]["forces"], conservative[0]["forces"])
    assert not np.allclose(default[0]["forces"], direct[0]["forces"])
    assert evaluate(model, records)["forces_mae"] == \
        evaluate(model, records, forces="conservative")["forces_mae"]
    assert TriDFTCalculator(model).force_source == "conservative"


def test_the_model_keeps_its_training_domain(conservative_run):
    result, _ = conservative_run
    domain = load_model(result.best_model_path).metadata["domain"]
    assert domain["elements"] == [1, 6, 8] and domain["min_distance"]["1-6"] > 0.9


def test_every_process_sets_the_learning_rate_from_rank_zeros_clock():
    class TwoProcesses:
        is_distributed = True

        def broadcast_float(self, value):
            return 100.0  # what rank 0 measured

    timed = config_from_dict({"training": {"time_limit_minutes": 5}}).training
    untimed = config_from_dict({}).training
    assert shared_elapsed(97.5, timed, TwoProcesses()) == 100.0
    assert shared_elapsed(97.5, untimed, TwoProcesses()) == 97.5  # steps decide, not time


@pytest.mark.parametrize("values", [{"training": {"max_steps": True}},
                                    {"training": {"lr": False}},
                                    {"model": {"features": True}},
                                    {"loss": {"weights": {"energy": True}}}])
def test_true_and_false_are_not_numbers(values):
    with pytest.raises(ConfigError, match="expected a number, not"):
        config_from_dict(values)


def test_booleans_stay_booleans():
    config = config_from_dict({"loss": {"pcgrad": True}, "model": {"variational": False}})
    assert config.loss.pcgrad is True and config.model.variational is False


def test_training_on_a_file_without_labels_is_refused(tmp_path):
    import ase
    import ase.io

    frames = [ase.Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])] * 8
    ase.io.write(tmp_path / "bare.extxyz", frames, format="extxyz")
    with pytest.raises(InputError, match="no training structure carries a label"):
        train(tiny_config(tmp_path / "run", tmp_path / "bare.extxyz"), progress=False)
    assert not (tmp_path / "run").exists()


def test_a_fresh_run_keeps_an_earlier_runs_files_unless_told(conservative_run, tmp_path):
    result, data = conservative_run
    before = result.best_model_path.read_bytes()
    config = tiny_config(result.run_dir, data, training={"max_steps": 2})
    with pytest.raises(TriDFTError, match="--overwrite"):
        train(config, progress=False)
    assert result.best_model_path.read_bytes() == before
