"""How to label (:class:`LabelSettings`) and how labelling fails; needs no PySCF."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tridft.errors import InputError, TriDFTError

PROPERTIES = ("energy", "forces", "polarizability", "dipole")


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
