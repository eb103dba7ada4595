"""Isolated-atom energies at a level of theory: reference energies that mean something.

A model trained on one formula cannot tell the energy of a carbon from that of an
oxygen: per-element references fitted to its data are arbitrary (see
tridft.data.references). The energies of the isolated atoms, computed with the same
functional, basis and numerical settings as the labels, fix them: the model then
learns atomisation energies, and predicts other compositions on a common scale.

    energies = isolated_atom_energies(["H", "C", "O"], LabelSettings())
    write_reference_energies(energies, settings, "atoms.yaml")
    # tridft train --set data.reference_energies=atoms.yaml

Each atom is computed in its ground-state spin multiplicity (Hund's rule; unrestricted
Kohn-Sham for open shells) with a spherically unconstrained density, the usual choice
for DFT atomisation energies.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Iterable

import yaml
from ase.data import atomic_numbers, chemical_symbols

from tridft.data.references import atomic_number
from tridft.errors import ConfigError, InputError
from tridft.files import atomic_output
from tridft.label.pyscf_backend.settings import LabelSettings

# 2S + 1 of the free atoms' ground states, H to Kr (Cr 3d5 4s1 and Cu 3d10 4s1 included).
GROUND_STATE_MULTIPLICITY = {
    "H": 2, "He": 1,
    "Li": 2, "Be": 1, "B": 2, "C": 3, "N": 4, "O": 3, "F": 2, "Ne": 1,
    "Na": 2, "Mg": 1, "Al": 2, "Si": 3, "P": 4, "S": 3, "Cl": 2, "Ar": 1,
    "K": 2, "Ca": 1, "Sc": 2, "Ti": 3, "V": 4, "Cr": 7, "Mn": 6, "Fe": 5, "Co": 4, "Ni": 3,
    "Cu": 2, "Zn": 1, "Ga": 2, "Ge": 3, "As": 4, "Se": 3, "Br": 2, "Kr": 1,
}


def element_symbols(elements: Iterable[str | int]) -> list[str]:
    """Symbols ('H', 1 or '1' -> 'H'), unique, in order of atomic number."""
    numbers = set()
    for element in elements:
        try:
            numbers.add(atomic_number(element, ""))
        except ConfigError:
            raise InputError(f"{element!r}: not an element symbol") from None
    return [chemical_symbols[z] for z in sorted(numbers)]


def isolated_atom_energies(elements: Iterable[str | int], settings: LabelSettings,
                           progress: bool = False) -> dict[str, float]:
    """{symbol: eV}: the energy of each free atom with ``settings`` (only its energy).

    Raises InputError for an element without a tabulated ground-state multiplicity,
    LabelFailure when an atom's SCF does not converge.
    """
    from tridft.label.pyscf_backend import label_structure

    symbols = element_symbols(elements)
    unknown = [s for s in symbols if s not in GROUND_STATE_MULTIPLICITY]
    if unknown:
        raise InputError(f"no ground-state multiplicity tabulated for {', '.join(unknown)} "
                         f"(known: H to Kr)")
    energy_only = replace(settings, properties=("energy",))
    energies = {}
    for symbol in _progress(symbols, progress):
        labels = label_structure([atomic_numbers[symbol]], [[0.0, 0.0, 0.0]], energy_only,
                                 charge=0, multiplicity=GROUND_STATE_MULTIPLICITY[symbol])
        energies[symbol] = float(labels["energy"])
    return energies


def write_reference_energies(energies: dict[str, float], settings: LabelSettings,
                             path: str | os.PathLike) -> None:
    """A YAML file that ``data.reference_energies`` reads: {symbol: eV}, with provenance."""
    header = (f"# Isolated-atom energies (eV), {settings.level_of_theory}, ground-state "
              f"multiplicities\n# ({', '.join(f'{s} {GROUND_STATE_MULTIPLICITY[s]}' for s in energies)})."
              f" Use: tridft train --set data.reference_energies={os.fspath(path)}\n")
    with atomic_output(path) as temporary:
        with open(temporary, "w") as handle:
            handle.write(header)
            yaml.safe_dump({symbol: round(value, 8) for symbol, value in energies.items()},
                           handle, sort_keys=False)


def _progress(symbols: list[str], show: bool):
    if not show:
        return symbols
    from tqdm.auto import tqdm

    return tqdm(symbols, desc="isolated atoms", unit="atom")
