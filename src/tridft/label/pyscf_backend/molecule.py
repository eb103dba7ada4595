"""From numbers and positions to a PySCF molecule: checks, the build, threads, imports."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator, Sequence

import numpy as np

from tridft.errors import InputError, TriDFTError


def pyscf_version() -> str:
    """``"pyscf X.Y.Z"``, or a clear error when PySCF is not installed."""
    return f"pyscf {_import_pyscf().__version__}"


def warm_up() -> str:
    """Import the PySCF modules a label needs (about a second), so that the first
    structure's ``wall_time_s`` measures DFT, not imports. Returns :func:`pyscf_version`."""
    _import_pyscf()
    import pyscf.df.grad.rks  # noqa: F401 - density-fitted gradients
    import pyscf.dft  # noqa: F401
    import pyscf.grad.rks  # noqa: F401
    import pyscf.scf.cphf  # noqa: F401
    import pyscf.scf.ucphf  # noqa: F401
    from pyscf.dft import libxc  # noqa: F401

    return pyscf_version()


def _import_pyscf():
    try:
        import pyscf
    except ImportError as error:
        raise TriDFTError("PySCF is needed for labelling: pip install 'tridft[label]' "
                          "(or pip install pyscf)") from error
    return pyscf


def check_structure(numbers: Sequence[int], charge: int, multiplicity: int,
                    pbc: Sequence[bool] | None = None) -> None:
    """Refuse what molecular Kohn-Sham cannot do, with a message that says why.

    Raises InputError for a periodic structure, a non-positive electron count, or an
    electron count whose parity does not match the multiplicity (9 electrons with
    multiplicity 1 has no closed-shell solution).
    """
    if pbc is not None and np.any(pbc):
        raise InputError("periodic structure: tridft label runs molecular DFT only "
                         "(set pbc to False for an isolated molecule)")
    n_electrons = int(np.sum(numbers)) - int(charge)
    if n_electrons <= 0:
        raise InputError(f"{n_electrons} electrons (charge {charge})")
    if multiplicity < 1:
        raise InputError(f"multiplicity must be at least 1, got {multiplicity}")
    unpaired = multiplicity - 1
    if unpaired > n_electrons or (n_electrons - unpaired) % 2:
        hint = (" (an odd electron count needs multiplicity 2: --multiplicity 2 or a "
                "'multiplicity' info key; or a charge)"
                if multiplicity == 1 else "")
        raise InputError(f"{n_electrons} electrons cannot have multiplicity "
                         f"{multiplicity}{hint}")


def build_molecule(numbers: Sequence[int], positions_angstrom, basis: str,
                   charge: int = 0, multiplicity: int = 1):
    """A built ``pyscf.gto.Mole``; an unknown basis becomes an InputError naming it."""
    _import_pyscf()
    from pyscf import gto
    from pyscf.lib.exceptions import BasisNotFoundError

    check_structure(numbers, charge, multiplicity)
    atoms = [(int(z), tuple(float(x) for x in r))
             for z, r in zip(numbers, np.asarray(positions_angstrom, dtype=float))]
    with warnings.catch_warnings():
        # PySCF suggests installing basis-set-exchange on an unknown name; our
        # error below says the same thing more plainly.
        warnings.simplefilter("ignore")
        try:
            return gto.M(atom=atoms, basis=basis, charge=int(charge),
                         spin=int(multiplicity) - 1, unit="Angstrom", verbose=0)
        except BasisNotFoundError as error:
            raise InputError(f"unknown basis set '{basis}' for elements "
                             f"{sorted(set(int(z) for z in numbers))} "
                             "(PySCF names such as def2-SVP, cc-pVDZ, 6-31G*)") from error


def check_functional(xc: str) -> None:
    """Raise InputError when libxc does not know the functional ``xc``."""
    _import_pyscf()
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(xc)
    except (KeyError, ValueError) as error:
        raise InputError(f"unknown exchange-correlation functional '{xc}'") from error


@contextlib.contextmanager
def pyscf_threads(n: int) -> Iterator[None]:
    """Run PySCF's OpenMP code with ``n`` threads, then restore the previous number."""
    from pyscf import lib

    previous = lib.num_threads()
    lib.num_threads(n)
    try:
        yield
    finally:
        lib.num_threads(previous)
