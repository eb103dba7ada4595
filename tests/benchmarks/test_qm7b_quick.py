"""benchmarks/qm7b.py: its --quick sections run end to end on the QM7b molecules, and the
pieces that decide what it measures (split by molecule, partial labels, noise) do what
its docstring says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import qm7b  # noqa: E402

pytestmark = pytest.mark.skipif(not qm7b.DATA.is_file(), reason="QM7b data not beside the repo")


@pytest.fixture(scope="module")
def molecules():
    return qm7b.Molecules(quick=False)


def test_split_is_by_molecule_and_the_trainers(molecules):
    assert (len(molecules.pool), len(molecules.validation), len(molecules.test)) == qm7b.SPLIT

    def key(record):
        return (tuple(record.numbers), record.positions.round(6).tobytes())

    pool, test = {key(r) for r in molecules.pool}, {key(r) for r in molecules.test}
    assert not pool & test
    # Internal units: CCSD polarizabilities of small molecules are a few to ~20 A^3.
    trace = np.array([np.trace(np.reshape(r.polarizability, (3, 3))) / 3
                      for r in molecules.pool])
    assert 1.0 < np.median(trace) < 20.0


def test_noise_is_symmetric_with_the_stated_spread(molecules):
    clean = molecules.pool
    noisy = qm7b.noisy(clean, 0.5)
    alpha_noise = np.array([np.reshape(n.polarizability, (3, 3)) - np.reshape(c.polarizability,
                                                                               (3, 3))
                            for n, c in zip(noisy, clean)])
    assert np.allclose(alpha_noise, alpha_noise.transpose(0, 2, 1))
    spread = np.std([c.polarizability for c in clean])
    assert np.std(alpha_noise) == pytest.approx(0.5 * spread, rel=0.1)
    mu_noise = np.array([n.dipole - c.dipole for n, c in zip(noisy, clean)])
    assert np.std(mu_noise) == pytest.approx(0.5 * np.std([c.dipole for c in clean]), rel=0.1)


@pytest.mark.parametrize("section, n_runs", [("transfer", 2 * 2 * 3), ("multitask", 6)])
def test_sections_quick(tmp_path, section, n_runs):
    out = tmp_path / f"{section}.json"
    qm7b.main([section, "--quick", "--out", str(out), "--keep-runs", str(tmp_path / "runs")])
    results = json.loads(out.read_text())
    assert results["complete"] and len(results["runs"]) == n_runs
    if section == "transfer":
        for run in results["runs"]:
            key = "dipole_mae" if run["direction"] == "forward" else "polarizability_mae"
            assert np.isfinite(run[key]) and run[key] > 0
        return
    runs = {run["variant"]: run for run in results["runs"]}
    # Half the molecules carry dipoles in both partial runs; only the trained heads report.
    assert runs["partial_0.5_multi_task"]["n_dipole_labels"] == 20
    assert runs["partial_0.5_dipole_only"]["n_train"] == 20
    assert "polarizability_mae" not in runs["partial_0.5_dipole_only"]
    assert "dipole_mae" not in runs["noisy_polarizability_only"]
    assert "dipole|polarizability" in runs["multi_task_clean"]["gradient_cosines"]


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_partial_label_subsets_hold_every_element(molecules, fraction):
    subset = qm7b.labelled_subset(molecules.pool, fraction)
    assert len(subset) == round(fraction * len(molecules.pool))
    elements = {int(z) for record in molecules.pool for z in record.numbers}
    assert {int(z) for i in subset for z in molecules.pool[i].numbers} == elements
    assert subset == qm7b.labelled_subset(molecules.pool, fraction)  # reproducible


def _labelled_copy(records, path, order, energy_of=lambda i: -float(i)):
    """`tridft label`-like output: frames in ``order``, each with its source_index."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    frames = []
    for i in order:
        atoms = Atoms(numbers=records[i].numbers, positions=records[i].positions)
        atoms.calc = SinglePointCalculator(atoms, energy=energy_of(i),
                                           forces=np.full((len(atoms), 3), 0.1 * i),
                                           dipole=np.array([0.01 * i, 0.0, 0.0]))
        atoms.info["source_index"] = i
        frames.append(atoms)
    ase.io.write(path, frames)


def test_pretraining_labels_are_matched_by_source_index(molecules, tmp_path):
    base = molecules.pool[:5]
    path = tmp_path / "labels.extxyz"
    _labelled_copy(base, path, order=[3, 0, 4, 1, 2])  # as parallel workers finish
    labelled = qm7b.with_pretraining_labels(base, path)
    assert [r.energy for r in labelled] == pytest.approx([0.0, -1.0, -2.0, -3.0, -4.0])
    assert np.allclose(labelled[4].forces, 0.4)
    # The labels of the polarizability and dipole are the base molecules' own...
    assert np.allclose(labelled[2].polarizability, base[2].polarizability)
    assert np.allclose(labelled[3].dipole, base[3].dipole)
    # ... unless the file's (cheaper) dipoles are asked for.
    cheap = qm7b.with_pretraining_labels(base, path, dipoles=True)
    assert np.allclose(cheap[3].dipole, [0.03, 0.0, 0.0])

    _labelled_copy(base, path, order=[0, 1, 2])
    with pytest.raises(SystemExit, match="no labels for 2 of the 5"):
        qm7b.with_pretraining_labels(base, path)
    _labelled_copy(base, path, order=range(5))
    text = path.read_text().replace("source_index=4 ", "")
    path.write_text(text)
    with pytest.raises(SystemExit, match="no source_index"):
        qm7b.with_pretraining_labels(base, path)
    _labelled_copy(molecules.pool[1:6], path, order=range(5))
    with pytest.raises(SystemExit, match="source_index 0 is not base molecule 0"):
        qm7b.with_pretraining_labels(base, path)
