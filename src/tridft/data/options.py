"""Parse the ``--keys`` and ``--units`` options (and their configuration-file twins).

Both options are comma-separated ``name=value`` pairs::

    --keys  energy=potential,polarizability=alpha,dipole=mu,extra.gap=homo_lumo_gap
    --units energy=Hartree,length=bohr,polarizability=bohr^3,dipole=e*bohr

A configuration file gives the same pairs as a mapping; ``keys_from_mapping`` and
``units_from_mapping`` check both forms the same way. Every mistake is a
ConfigError that names the option and the offending name.
"""

from __future__ import annotations

from typing import Mapping

from tridft.errors import ConfigError
from tridft.units import UnitSpec, UnknownUnitError, factor

# Label names a user may map in --keys; "extra.NAME" adds a further label NAME.
_KEY_FIELDS = ("energy", "forces", "polarizability", "dipole")
_EXTRA_PREFIX = "extra."
# A file key written as "none" (or left empty) means: do not read this label.
_NO_KEY = ("", "none")
_UNIT_FIELDS = ("energy", "length", "polarizability", "dipole")


def parse_pairs(text: str | None, option: str) -> dict[str, str]:
    """``"a=b,c=d"`` -> ``{"a": "b", "c": "d"}``; ConfigError on a malformed or repeated pair.

    >>> parse_pairs("energy=potential, dipole=mu", "--keys")
    {'energy': 'potential', 'dipole': 'mu'}
    """
    pairs: dict[str, str] = {}
    if not text or not text.strip():
        return pairs
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ConfigError(f"{option}: expected name=value, got '{item.strip()}'")
        if name in pairs:
            raise ConfigError(f"{option}: '{name}' is given twice")
        pairs[name] = value
    return pairs


def keys_from_mapping(mapping: Mapping[str, str | None], option: str = "--keys"):
    """A KeyMap from ``{label: file_key}``; ``extra.NAME`` entries become extra labels.

    >>> keys_from_mapping({"energy": "potential", "extra.gap": "homo_lumo_gap"})
    KeyMap(energy='potential', forces='forces', polarizability='polarizability', dipole='dipole', extra={'gap': 'homo_lumo_gap'})
    """
    from tridft.data.io import KeyMap  # io imports ase; keep this module light

    chosen: dict[str, str | None] = {}
    extra: dict[str, str] = {}
    for name, value in mapping.items():
        file_key = None if value is None or str(value).strip().lower() in _NO_KEY \
            else str(value).strip()
        if name.startswith(_EXTRA_PREFIX) and len(name) > len(_EXTRA_PREFIX):
            if file_key is None:
                raise ConfigError(f"{option}: '{name}' needs a key name in the file")
            extra[name[len(_EXTRA_PREFIX):]] = file_key
        elif name in _KEY_FIELDS:
            chosen[name] = file_key
        else:
            known = ", ".join(_KEY_FIELDS + ("extra.NAME",))
            raise ConfigError(f"{option}: unknown label '{name}' (known: {known})")
    return KeyMap(**chosen, extra=extra)


def units_from_mapping(mapping: Mapping[str, str], option: str = "--units") -> UnitSpec:
    """A UnitSpec from ``{quantity: unit}``, every unit checked against units.py.

    >>> units_from_mapping({"energy": "Hartree"}).energy
    'Hartree'
    """
    for name, unit in mapping.items():
        if name in ("force", "forces"):
            raise ConfigError(f"{option}: forces are in energy/length units; "
                              f"give energy= and length= instead of '{name}='")
        if name not in _UNIT_FIELDS:
            raise ConfigError(f"{option}: unknown quantity '{name}' "
                              f"(known: {', '.join(_UNIT_FIELDS)})")
        try:
            factor(name, str(unit))
        except UnknownUnitError as error:
            raise ConfigError(f"{option}: {error}") from None
    return UnitSpec(**{name: str(unit) for name, unit in mapping.items()})


def parse_keys(text: str | None):
    """The KeyMap written as ``--keys energy=potential,dipole=mu``; defaults when empty."""
    return keys_from_mapping(parse_pairs(text, "--keys"), "--keys")


def parse_units(text: str | None) -> UnitSpec:
    """The UnitSpec written as ``--units energy=Hartree,length=bohr``; internal units when empty."""
    return units_from_mapping(parse_pairs(text, "--units"), "--units")
