"""Reference energies: fitted only where the compositions determine them, isolated atoms
otherwise, and the energies of compositions they do not determine refused."""

from __future__ import annotations

import numpy as np
import pytest

from tridft.data.record import Record
from tridft.data.references import (check_energy_support, fit_references, formula,
                                    isolated_atom_references, supports,
                                    without_unsupported_energies)
from tridft.data.stats import DatasetStats, compute_stats
from tridft.errors import ConfigError, InputError

TRUE = {1: -13.6, 6: -1030.0, 8: -2040.0}  # eV
ETHANOL = {6: 2, 1: 6, 8: 1}
METHANOL = {6: 1, 1: 4, 8: 1}
PROPANOL = {6: 3, 1: 8, 8: 1}
ACETIC_ACID = {6: 2, 1: 4, 8: 2}


def numbers(counts: dict[int, int]) -> np.ndarray:
    return np.repeat(list(counts), list(counts.values()))


def structure(counts: dict[int, int], energy: float | None = None, source: str = "") -> Record:
    z = numbers(counts)
    positions = np.random.default_rng(len(z)).uniform(0, 3, size=(len(z), 3))
    if energy is None:
        energy = sum(TRUE[int(k)] for k in z)
    return Record(numbers=z, positions=positions, energy=energy, source=source)


def test_one_formula_shares_the_energy_equally_and_supports_only_that_formula():
    references, support = fit_references([structure(ETHANOL, -4209.0)] * 3)
    assert references == pytest.approx({1: -4209.0 / 9, 6: -4209.0 / 9, 8: -4209.0 / 9})
    assert support["undetermined"] == [1, 6, 8] and support["formulas"] == ["C2H6O"]
    assert supports(support, numbers(ETHANOL))
    assert supports(support, np.concatenate([numbers(ETHANOL)] * 2))  # two molecules
    assert not supports(support, numbers(METHANOL))
    assert not supports(support, [1, 1, 7])  # an element never seen


def test_two_formulas_support_their_combinations_only():
    references, support = fit_references([structure(ETHANOL), structure(METHANOL)])
    for counts in (ETHANOL, METHANOL, PROPANOL):  # propanol = 2 ethanol - methanol
        assert supports(support, numbers(counts))
        predicted = sum(references[int(z)] for z in numbers(counts))
        assert predicted == pytest.approx(sum(TRUE[int(z)] for z in numbers(counts)))
    assert not supports(support, numbers(ACETIC_ACID))


def test_compositions_that_determine_every_element_recover_the_references():
    rng = np.random.default_rng(0)
    records = [structure({1: int(rng.integers(1, 9)), 6: int(rng.integers(0, 4)),
                          8: int(rng.integers(1, 3))}) for _ in range(20)]
    references, support = fit_references(records)
    assert references == pytest.approx(TRUE)
    assert support["basis"] is None and support["undetermined"] == []
    assert supports(support, numbers(ACETIC_ACID))


def test_isolated_atom_energies_support_every_composition_of_their_elements():
    references, support = isolated_atom_references({"H": -13.6, "C": -1030.0, "8": -2040.0},
                                                   [1, 6, 8])
    assert references == TRUE and supports(support, numbers(METHANOL))
    with pytest.raises(ConfigError, match="no energy for O"):
        isolated_atom_references({"H": -13.6, "C": -1030.0}, [1, 6, 8])
    stats = compute_stats([structure(ETHANOL, -4209.0)] * 2, cutoff=3.0,
                          isolated_atoms={"H": -13.6, "C": -1030.0, "O": -2040.0})
    assert stats.reference_energies == TRUE
    assert stats.energy_per_atom_shift == pytest.approx((-4209.0 + 4181.6) / 9)
    assert DatasetStats.from_dict(stats.to_dict()).reference_support == stats.reference_support


def test_refusal_names_the_structure_and_its_composition():
    _, support = fit_references([structure(ETHANOL)])
    records = [structure(ETHANOL, source="a.xyz:0"), structure(METHANOL, source="a.xyz:1")]
    with pytest.raises(InputError, match=r"a\.xyz:1: cannot predict the energy of CH4O.*"
                                         r"\(C2H6O\).*data\.reference_energies"):
        check_energy_support(support, records)
    check_energy_support(None, records)  # a model without the information accepts all
    kept, dropped = without_unsupported_energies(records, support)
    assert dropped == 1 and kept[1].energy is None and kept[0].energy is not None
    assert formula(numbers(METHANOL)) == "CH4O"
