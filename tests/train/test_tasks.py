"""Which tasks and heads a run gets: every label the training data carries, nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from tridft.data.record import Record
from tridft.errors import ConfigError, InputError
from tridft.train.config import LossConfig, config_from_dict
from tridft.train.tasks import plan_tasks

from .tiny import TINY_MODEL


def water(**labels) -> Record:
    return Record(numbers=np.array([8, 1, 1]),
                  positions=np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), **labels)


def config(**data):
    return config_from_dict({"model": dict(TINY_MODEL), "data": data})


ALPHA, MU = np.eye(3) * 1.4, np.array([0.0, 0.0, 0.4])
DEFAULT_WEIGHTS = LossConfig().weights  # energy, forces (and -dE/dR), polarizability


def test_polarizabilities_and_dipoles_train_only_those():
    records = [water(polarizability=ALPHA, dipole=MU), water(polarizability=ALPHA)]
    plan = plan_tasks(config(), records)
    assert plan.weights == {"polarizability": 2.0, "dipole": 1.0}
    assert plan.standard_heads == ("polarizability",) and list(plan.targets) == ["dipole"]
    assert not plan.jacobian
    assert plan.not_trained == [t for t in DEFAULT_WEIGHTS if t != "polarizability"]
    loss = plan.loss_config(config().loss)
    assert sorted(loss.tasks()) == ["dipole", "polarizability"] and loss.jacobian_weight == 0
    model = plan.build_model(config().model, None, records)
    assert sorted(model.heads) == ["dipole", "polarizability"]


def test_every_label_is_trained_unless_its_weight_is_zero():
    records = [water(energy=-2080.0, forces=np.zeros((3, 3)), polarizability=ALPHA,
                     dipole=MU)]
    plan = plan_tasks(config(), records)
    assert plan.weights == {**DEFAULT_WEIGHTS, "dipole": 1.0}
    assert plan.standard_heads == ("energy", "forces", "polarizability") and plan.jacobian
    values = config().model_dump(mode="json")
    values["loss"]["weights"] = {"energy": 2.0, "dipole": 0.0}  # forces not named: default
    plan = plan_tasks(config_from_dict(values), records)
    assert plan.weights == {"energy": 2.0, "forces": 10.0, "polarizability": 2.0}
    assert plan.added == ["forces", "polarizability"]


def test_energies_alone_give_an_energy_head_without_jacobian():
    plan = plan_tasks(config(), [water(energy=-2080.0)])
    assert plan.weights == {"energy": 0.1} and plan.standard_heads == ("energy",)
    assert not plan.jacobian


def test_further_labels_get_the_head_of_their_kind():
    records = [water(extra={"gap": np.array(5.2), "quad": np.arange(9.0)},
                     atom_extra={"q": np.array([-0.8, 0.4, 0.4])}),
               water(polarizability=ALPHA)]
    keys = {"extra.gap": "gap", "extra.quad": "quad", "extra.q": "q"}
    plan = plan_tasks(config(keys=keys, kinds={"gap": "structure_scalar_mean"}), records)
    kinds = {name: (t.kind, t.extensive) for name, t in plan.targets.items()}
    assert kinds == {"gap": ("structure_scalar", False), "quad": ("structure_tensor", True),
                     "q": ("atom_scalar", True)}
    conformed = plan.conform(records)
    assert conformed[0].extra["quad"].shape == (3, 3) and conformed[1].extra == {}
    with pytest.raises(ConfigError, match="data.kinds.gap: give the kind"):
        plan_tasks(config(keys=keys), records)


def test_a_weight_without_a_label_and_data_without_labels_are_errors():
    with pytest.raises(ConfigError, match="loss.weights.gap: no such label"):
        plan_tasks(config_from_dict({"loss": {"weights": {"gap": 1.0}}}), [water(energy=1.0)])
    with pytest.raises(InputError, match="no training structure carries a label"):
        plan_tasks(config(), [water()], source="empty.xyz")


def test_dipoles_of_periodic_cells_are_refused():
    cell = water(dipole=MU, source="cells.xyz:3")
    cell.cell, cell.pbc = np.eye(3) * 10, np.ones(3, dtype=bool)
    with pytest.raises(InputError, match="cells.xyz:3: a dipole label on a periodic cell"):
        plan_tasks(config(), [cell])
