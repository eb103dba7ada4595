"""The report of a run: its test split, found from split.json and the run's data settings."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest

from tridft.data.io import bundled_dataset_path
from tridft.data.splits import make_splits
from tridft.errors import InputError
from tridft.model.model import build_model
from tridft.model.persistence import save_model
from tridft.report.run_report import write_run_report


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as training leaves it: a model whose metadata names a 12-frame file
    (of which the run used 10: max_structures) and the split of those 10."""
    data = tmp_path / "data.extxyz"
    ase.io.write(data, ase.io.read(bundled_dataset_path(), index=":12"), format="extxyz")
    splits = make_splits(10, (0.6, 0.2, 0.2), seed=3)
    run = tmp_path / "run"
    splits.save(run / "split.json")
    metadata = {"data": {"train": str(data), "validation": None, "test": None},
                "config": {"data": {"max_structures": 10, "keys": {}, "units": {}}},
                "split": splits.to_dict()}
    model = build_model({"features": 8, "layers": 1, "head_hidden": 8})
    save_model(model, run / "model.pt", metadata=metadata)
    return run


def test_report_is_on_the_test_frames(run_dir):
    report = write_run_report(run_dir)
    test_indices = json.loads((run_dir / "split.json").read_text())["test"]
    source = ase.io.read(run_dir.parent / "data.extxyz", index=":")
    copied = ase.io.read(report.test_file, index=":")
    assert len(copied) == len(test_indices) == report.metrics["n_structures"]
    for index, atoms in zip(test_indices, copied):
        np.testing.assert_allclose(atoms.positions, source[index].positions)
        assert atoms.get_potential_energy() == pytest.approx(
            source[index].get_potential_energy())
    written = json.loads(report.metrics_path.read_text())
    assert written["split"] == "test"
    assert written["forces_mae"] == pytest.approx(report.metrics["forces_mae"])
    assert "parity plots" in report.plots
    assert "| structures | 2 |" in report.report_path.read_text()


def test_a_file_shorter_than_the_split_is_an_error(run_dir):
    data = run_dir.parent / "data.extxyz"
    ase.io.write(data, ase.io.read(data, index=":6"), format="extxyz")
    with pytest.raises(InputError, match="split is for 10 structures, but the file now has 6"):
        write_run_report(run_dir)
