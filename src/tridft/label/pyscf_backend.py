"""Real DFT labels for one molecule with PySCF: energy, forces, dipole, polarizability.

Everything PySCF computes is in atomic units (Hartree, bohr, e*bohr, bohr^3);
this module converts once, on the way out, with the constants of
:mod:`tridft.units`, so callers only ever see tridft's internal units
(eV, Angstrom, eV/Angstrom, e*Angstrom, Angstrom^3).

The defaults of :class:`LabelSettings` are the settings that labelled
``shared/data/ethanol_pbe_def2svp_800.extxyz`` (PBE/def2-SVP, density fitting,
grid level 2, SCF tolerance 1e-10 Hartree, CPKS tolerance 1e-9).

The static polarizability is the analytic second derivative of the energy with
respect to a uniform electric field, from the coupled-perturbed Kohn-Sham
(CPKS) equations. PySCF 2.14 ships no ``pyscf.prop``, so the CPKS solve is
written here (:func:`_cpks_polarizability`), on top of ``pyscf.scf.cphf``
(closed shell) and ``pyscf.scf.ucphf`` (open shell) and the SCF object's own
response function ``mf.gen_response(hermi=1)``, which knows about density
fitting and the exchange-correlation kernel. :func:`finite_field_polarizability`
is the slow, independent check.

>>> from tridft.label.pyscf_backend import LabelSettings, label_structure
>>> water = ([8, 1, 1], [[0, 0, 0.117], [0, 0.757, -0.467], [0, -0.757, -0.467]])
>>> labels = label_structure(*water, LabelSettings(basis="sto-3g"))  # doctest: +SKIP
>>> labels["polarizability"].shape  # doctest: +SKIP
(3, 3)
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from tridft.errors import InputError, TriDFTError
from tridft.units import BOHR3_ANGSTROM3, BOHR_ANGSTROM, HARTREE_EV

logger = logging.getLogger(__name__)

PROPERTIES = ("energy", "forces", "polarizability", "dipole")

# Field strength (atomic units, Hartree/(e*bohr)) of the finite-field check:
# small enough that hyperpolarizability terms stay below 1e-5 of alpha, large
# enough that the SCF tolerance does not swamp the dipole difference.
FINITE_FIELD_AU = 1e-3
# Macro iterations of the second-order (Newton) solver in the one SCF retry.
NEWTON_MAX_CYCLE = 50


class LabelFailure(TriDFTError):
    """A structure could not be labelled (SCF did not converge, CPKS failed, ...)."""


class NotSupported(TriDFTError):
    """A combination of settings this backend does not compute."""


@dataclass(frozen=True)
class LabelSettings:
    """How to label: level of theory, numerical settings, and which properties.

    xc:           exchange-correlation functional, any name libxc knows ("PBE", "B3LYP")
    basis:        orbital basis set name ("def2-SVP", "sto-3g", "aug-cc-pVDZ")
    density_fit:  density fitting of the Coulomb term (RI-J)
    auxbasis:     auxiliary basis of the density fitting; "auto" lets PySCF choose (its
                  choice depends on the functional and on the PySCF version)
    grid_level:   PySCF DFT grid level 0-9; 2 keeps forces within 0.5 meV/Angstrom of
                  level 3 on ethanol, level 1 is off by up to 16 meV/Angstrom
    conv_tol:     SCF energy convergence, Hartree
    cpks_tol:     convergence of the CPKS (polarizability) Krylov solver, relative residual
    max_cycle:    SCF iterations before the (single) retry with a second-order solver
    charge:       total charge (e) used when a structure does not carry its own
    multiplicity: 2S+1 used when a structure does not carry its own
    threads:      OpenMP threads inside PySCF; one per process is fastest on small machines
    properties:   subset of ("energy", "forces", "polarizability", "dipole")
    """

    xc: str = "PBE"
    basis: str = "def2-SVP"
    density_fit: bool = True
    # Weigend's universal JK-fitting set (H-Rn): what labelled the reference ethanol
    # file, and what PySCF picks when density_fit() comes before the functional is set.
    # Pinned, because PySCF's automatic choice for PBE is a different (J-only) set that
    # moves ethanol energies by 3 meV and forces by 2 meV/Angstrom.
    auxbasis: str = "def2-universal-jkfit"
    grid_level: int = 2
    conv_tol: float = 1e-10
    cpks_tol: float = 1e-9
    max_cycle: int = 100
    charge: int = 0
    multiplicity: int = 1
    threads: int = 1
    properties: tuple[str, ...] = PROPERTIES

    def __post_init__(self):
        unknown = [p for p in self.properties if p not in PROPERTIES]
        if unknown or not self.properties:
            raise InputError(f"unknown properties {unknown or '(none given)'}; "
                             f"choose from {', '.join(PROPERTIES)}")
        # A canonical order, so that equal settings hash equally.
        object.__setattr__(self, "properties",
                           tuple(p for p in PROPERTIES if p in self.properties))
        if self.multiplicity < 1:
            raise InputError(f"multiplicity must be >= 1, got {self.multiplicity}")

    @property
    def level_of_theory(self) -> str:
        """Short human-readable method string, e.g. ``"PBE/def2-SVP (RI def2-universal-jkfit, grid 2)"``."""
        ri = f"RI {self.auxbasis}, " if self.density_fit else ""
        return f"{self.xc}/{self.basis} ({ri}grid {self.grid_level})"

    def identity(self) -> dict:
        """The settings that change the numbers (for the label hash); threads do not."""
        fields = asdict(self)
        for name in ("threads", "max_cycle", "charge", "multiplicity"):
            fields.pop(name)  # charge and multiplicity are hashed per structure instead
        if not self.density_fit:
            fields.pop("auxbasis")
        fields["properties"] = list(self.properties)
        return fields


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


# --------------------------------------------------------------------------- inputs

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


# --------------------------------------------------------------------------- SCF

def make_scf(mol, settings: LabelSettings):
    """An unconverged KS object: RKS for singlets, UKS for open shells."""
    from pyscf import dft

    mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
    mf.xc = settings.xc
    mf.grids.level = settings.grid_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    mf.verbose = 0
    if settings.density_fit:
        auxbasis = None if settings.auxbasis.lower() == "auto" else settings.auxbasis
        mf = mf.density_fit(auxbasis=auxbasis)
    return mf


def run_scf(mf, dm0=None):
    """Converge ``mf`` in place; on failure retry once with a level shift and a Newton solver.

    Returns whether the retry was needed. The second-order solver's orbitals are
    copied back into ``mf``, so gradients and the CPKS response always come from a
    plain KS object. Raises LabelFailure if the retry fails too.
    """
    mf.kernel(dm0)
    if mf.converged:
        return False
    logger.info("SCF did not converge in %d cycles; retrying with a level shift "
                "and the second-order solver", mf.max_cycle)
    mf.level_shift = 0.25  # Hartree; widens the HOMO-LUMO gap while iterating only
    newton = mf.newton()
    newton.max_cycle = NEWTON_MAX_CYCLE  # its own budget: macro iterations are few but costly
    newton.kernel(mf.make_rdm1())
    mf.level_shift = 0.0
    if not newton.converged:
        raise LabelFailure(f"SCF did not converge ({mf.max_cycle} cycles, then {NEWTON_MAX_CYCLE} of "
                           f"the level-shifted second-order solver; last energy "
                           f"{newton.e_tot:.8f} Hartree)")
    # The Newton solver ends with canonical orbitals, which the CPKS equations need.
    mf.mo_coeff, mf.mo_occ, mf.mo_energy = newton.mo_coeff, newton.mo_occ, newton.mo_energy
    mf.e_tot, mf.converged = newton.e_tot, True
    return True


def is_open_shell(mf) -> bool:
    """Whether ``mf`` is unrestricted (two sets of orbitals)."""
    return np.asarray(mf.mo_occ).ndim == 2


# --------------------------------------------------------------------------- properties

def charge_centre_bohr(mol) -> np.ndarray:
    """Centre of nuclear charge (bohr): the dipole origin, as in the reference data."""
    charges = mol.atom_charges()
    return charges @ mol.atom_coords() / charges.sum()


def dipole_integrals(mol, origin_bohr) -> np.ndarray:
    """<mu| r - origin |nu>, shape (3, nao, nao), bohr."""
    with mol.with_common_orig(origin_bohr):
        return mol.intor_symmetric("int1e_r", comp=3)


def dipole_au(mf, origin_bohr) -> np.ndarray:
    """Dipole moment (e*bohr): nuclear minus electronic, about ``origin_bohr``."""
    mol = mf.mol
    dm = mf.make_rdm1()
    if dm.ndim == 3:  # alpha + beta density
        dm = dm[0] + dm[1]
    electronic = np.einsum("xij,ji->x", dipole_integrals(mol, origin_bohr), dm)
    nuclear = mol.atom_charges() @ (mol.atom_coords() - origin_bohr)
    return nuclear - electronic


def forces_au(mf) -> np.ndarray:
    """Forces (Hartree/bohr), shape (n, 3): minus the analytic nuclear gradient."""
    grad = mf.nuc_grad_method()
    grad.verbose = 0
    return -np.asarray(grad.kernel())


def _occ_vir(mo_coeff, mo_occ):
    occupied = mo_occ > 0
    return mo_coeff[:, occupied], mo_coeff[:, ~occupied]


def _closed_shell_response(mf):
    """fvind for cphf: first-order orbitals (set, nvir, nocc) -> response (set, nvir, nocc)."""
    orbo, orbv = _occ_vir(mf.mo_coeff, mf.mo_occ)
    nvir, nocc = orbv.shape[1], orbo.shape[1]
    vresp = mf.gen_response(hermi=1)

    def fvind(mo1):
        mo1 = mo1.reshape(-1, nvir, nocc)
        # Density change of doubly occupied orbitals: 2 * (C_v U C_o^T + h.c.).
        dm1 = np.einsum("pa,xai,qi->xpq", orbv, mo1 * 2, orbo)
        dm1 = dm1 + dm1.transpose(0, 2, 1)
        v1 = vresp(dm1)
        return np.einsum("xpq,pa,qi->xai", v1, orbv, orbo)

    return fvind


def _open_shell_response(mf):
    """fvind for ucphf: alpha and beta first-order orbitals, concatenated per set."""
    (orbo_a, orbv_a), (orbo_b, orbv_b) = (_occ_vir(c, o) for c, o in
                                          zip(mf.mo_coeff, mf.mo_occ))
    shape_a = (orbv_a.shape[1], orbo_a.shape[1])
    shape_b = (orbv_b.shape[1], orbo_b.shape[1])
    n_a = shape_a[0] * shape_a[1]
    vresp = mf.gen_response(hermi=1)

    def fvind(mo1):
        mo1 = mo1.reshape(-1, n_a + shape_b[0] * shape_b[1])
        x_a = mo1[:, :n_a].reshape(-1, *shape_a)
        x_b = mo1[:, n_a:].reshape(-1, *shape_b)
        dm_a = np.einsum("pa,xai,qi->xpq", orbv_a, x_a, orbo_a)
        dm_b = np.einsum("pa,xai,qi->xpq", orbv_b, x_b, orbo_b)
        dm1 = np.stack([dm_a + dm_a.transpose(0, 2, 1), dm_b + dm_b.transpose(0, 2, 1)])
        v1 = vresp(dm1)
        v_a = np.einsum("xpq,pa,qi->xai", v1[0], orbv_a, orbo_a)
        v_b = np.einsum("xpq,pa,qi->xai", v1[1], orbv_b, orbo_b)
        return np.hstack([v_a.reshape(len(mo1), -1), v_b.reshape(len(mo1), -1)])

    return fvind


def polarizability_au(mf, origin_bohr, tol: float = 1e-9, max_cycle: int = 100) -> np.ndarray:
    """Static polarizability (bohr^3), shape (3, 3), from the CPKS equations.

    The perturbation is h1 = +F.r (the field acting on electrons of charge -1);
    the first-order orbitals U solve (e_a - e_i) U_ai + [v(dD)]_ai = -h1_ai, and
    alpha_xy = d(mu_x)/dF_y = -Tr(r_x dD/dF_y) = -n_occ * 2 sum_ai h1_x,ai U_y,ai
    with n_occ = 2 for a closed shell (1 per spin channel for an open shell).
    """
    from pyscf.scf import cphf, ucphf

    r = dipole_integrals(mf.mol, origin_bohr)
    if is_open_shell(mf):
        h1 = [np.einsum("xpq,pa,qi->xai", r, orbv, orbo)
              for orbo, orbv in (_occ_vir(c, o) for c, o in zip(mf.mo_coeff, mf.mo_occ))]
        mo1, _ = ucphf.solve(_open_shell_response(mf), mf.mo_energy, mf.mo_occ, h1,
                             max_cycle=max_cycle, tol=tol)
        e2 = sum(np.einsum("xai,yai->xy", h, u) for h, u in zip(h1, mo1))
        occupancy = 1.0
    else:
        orbo, orbv = _occ_vir(mf.mo_coeff, mf.mo_occ)
        h1 = np.einsum("xpq,pa,qi->xai", r, orbv, orbo)
        mo1, _ = cphf.solve(_closed_shell_response(mf), mf.mo_energy, mf.mo_occ, h1,
                            max_cycle=max_cycle, tol=tol)
        e2 = np.einsum("xai,yai->xy", h1, mo1)
        occupancy = 2.0
    # The factor 2 of (dD + dD^T); symmetrising removes the solver's residual asymmetry.
    return -occupancy * (e2 + e2.T)


# --------------------------------------------------------------------------- public API

def label_structure(numbers: Sequence[int], positions_angstrom, settings: LabelSettings,
                    charge: int | None = None, multiplicity: int | None = None) -> dict:
    """Label one molecule with Kohn-Sham DFT; every number in tridft internal units.

    numbers:            (n,)   atomic numbers
    positions_angstrom: (n, 3) Angstrom
    charge, multiplicity: default to ``settings.charge`` and ``settings.multiplicity``

    Returns a dict with the requested properties of ``settings.properties``:
    ``energy`` (float, eV), ``forces`` ((n, 3), eV/Angstrom), ``dipole`` ((3,), e*Angstrom,
    origin at the centre of nuclear charge), ``polarizability`` ((3, 3), Angstrom^3), and
    always ``level_of_theory`` (str), ``program`` ("pyscf X.Y.Z"), ``wall_time_s`` (float),
    ``charge``, ``multiplicity``, ``scf_retried`` (bool).

    Raises InputError for bad input (unknown basis or functional, impossible electron
    count), LabelFailure when the SCF does not converge.
    """
    start = time.perf_counter()
    charge = settings.charge if charge is None else int(charge)
    multiplicity = settings.multiplicity if multiplicity is None else int(multiplicity)
    check_functional(settings.xc)
    mol = build_molecule(numbers, positions_angstrom, settings.basis, charge, multiplicity)
    with pyscf_threads(settings.threads):
        mf = make_scf(mol, settings)
        retried = run_scf(mf)
        labels = _properties(mf, settings)
    labels.update(level_of_theory=settings.level_of_theory, program=pyscf_version(),
                  wall_time_s=time.perf_counter() - start, charge=charge,
                  multiplicity=multiplicity, scf_retried=retried)
    return labels


def _properties(mf, settings: LabelSettings) -> dict:
    """The requested properties of a converged SCF, converted to internal units."""
    origin = charge_centre_bohr(mf.mol)
    out = {}
    if "energy" in settings.properties:
        out["energy"] = float(mf.e_tot) * HARTREE_EV
    if "forces" in settings.properties:
        out["forces"] = forces_au(mf) * (HARTREE_EV / BOHR_ANGSTROM)
    if "dipole" in settings.properties:
        out["dipole"] = dipole_au(mf, origin) * BOHR_ANGSTROM
    if "polarizability" in settings.properties:
        alpha = polarizability_au(mf, origin, tol=settings.cpks_tol)
        if not np.all(np.isfinite(alpha)):
            raise LabelFailure("CPKS polarizability is not finite")
        out["polarizability"] = alpha * BOHR3_ANGSTROM3
    return out


def finite_field_polarizability(numbers: Sequence[int], positions_angstrom,
                                settings: LabelSettings, charge: int | None = None,
                                multiplicity: int | None = None,
                                field_au: float = FINITE_FIELD_AU) -> np.ndarray:
    """Polarizability (Angstrom^3, (3, 3)) as a central difference of the dipole.

    Six extra SCFs with a field of +-``field_au`` (atomic units) along x, y, z:
    alpha[:, j] = (mu(+F e_j) - mu(-F e_j)) / (2 F). Adding +F.r to the core
    Hamiltonian is the physical field for electrons of charge -1, so alpha is
    +d(mu)/dF. Slow (about 1.5x the analytic route); meant for validation.
    """
    charge = settings.charge if charge is None else int(charge)
    multiplicity = settings.multiplicity if multiplicity is None else int(multiplicity)
    mol = build_molecule(numbers, positions_angstrom, settings.basis, charge, multiplicity)
    origin = charge_centre_bohr(mol)
    r = dipole_integrals(mol, origin)
    alpha = np.zeros((3, 3))
    with pyscf_threads(settings.threads):
        reference = make_scf(mol, settings)
        run_scf(reference)
        dm0 = reference.make_rdm1()
        for j in range(3):
            dipoles = []
            for sign in (+1.0, -1.0):
                mf = make_scf(mol, settings)
                h_field = mf.get_hcore() + sign * field_au * r[j]
                mf.get_hcore = lambda *args, _h=h_field: _h
                run_scf(mf, dm0)
                dipoles.append(dipole_au(mf, origin))
            alpha[:, j] = (dipoles[0] - dipoles[1]) / (2 * field_au)
    return 0.5 * (alpha + alpha.T) * BOHR3_ANGSTROM3
