"""A cheap, exactly conservative potential for the fastest motions: valence springs.

    springs = ValenceSprings.from_model(model, atoms)   # once, before the dynamics
    springs.forces(atoms.positions)                      # (n, 3) eV/Angstrom, ~50 us
    springs.energy(atoms.positions)                      # eV

Multiple time stepping (tridft.md.integrators) evaluates a fast force every step and
the rest of -dE/dR as a kick every k steps. If the fast force is the gradient of some
potential, the integrator is symplectic and time-reversible (r-RESPA, Tuckerman, Berne
and Martyna 1992): it conserves the model's energy as velocity Verlet does, whatever
that potential is. How good the potential is only decides how large k may be: the kick
carries everything the fast force leaves out, so it must vary slowly compared with
k time steps. In a molecule the fastest motions are the bond stretches (X-H: 3000-3700
cm^-1, periods of 9-11 fs), then the bends (1000-1500 cm^-1). A Morse spring on every
bond and a softer one across every bond angle (between the two outer atoms, as
Urey-Bradley terms do) take most of both out:

    E_ref = sum over pairs p of  k_p / (2 a_p^2) (1 - exp(-a_p (r_p - r0_p)))^2

harmonic, k_p / 2 (r_p - r0_p)^2, for the few hundredths of an Angstrom these
distances vibrate by at room temperature, with the usual anharmonicity of a covalent
bond (a = 1.9 / Angstrom; the well depth k / (2 a^2) is then 2-6 eV; 1.0 / Angstrom
across angles), and flat when a bond breaks (or a model lets a molecule fly apart):
the kicks never have to cancel a spring holding together what the model lets go.

The bonds are the pairs closer than 1.2 x the sum of their covalent radii (ASE's
natural cutoffs) in the starting structure, the angle pairs the two ends of two bonds
that share an atom, r0 the starting distances, and k the model's own: for a sum of pair
potentials the Hessian block between atoms i and j is -V''(r) along their distance, so

    k_p = -u_p^T H_ij u_p        u_p: unit vector from i to j, H: d^2E/dR^2 of the model

(clipped at 0), from one Hessian-vector product per pair by autograd, in float64;
beyond 64 pairs, from 4 pairs of each kind (elements, bond or angle), shared by all
pairs of that kind (a 192-atom water box: 8 products instead of 192).
The springs are fixed for the whole run; the model's -dE/dR decides the dynamics.
On ethanol (benchmarks/md_ethanol.py, docs/spectra.md) the angle springs lower the
energy fluctuation of corrections every 3 steps from 1.8 to 1.0 meV.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import ase
import numpy as np
import torch
from ase.neighborlist import natural_cutoffs, neighbor_list

from tridft.model.model import TriDFTModel
from tridft.spectra.harmonic import energy_gradient, jacobian_rows

BOND_SCALE = 1.2  # bonded: closer than this x the sum of the covalent radii
BOND_A = 1.9  # 1/Angstrom: the anharmonicity of bond springs (a above)
ANGLE_A = 1.0  # 1/Angstrom: ... and of the springs across bond angles
CHUNK = 8  # Hessian-vector products per batched backward pass (memory grows with it)
# Up to this many springs each gets its own constant; beyond, the pairs of one kind
# (elements, bond or angle) share the mean of SAMPLES_PER_KIND of them: the cost of a
# Hessian-vector product grows with the structure, and a water box has one kind of bond.
OWN_CONSTANTS = 64
SAMPLES_PER_KIND = 4


@dataclass
class ValenceSprings:
    """Morse springs between P pairs of atoms of an n-atom structure.

    first, second  (P,)    atom indices of each pair
    offsets        (P, 3)  Angstrom: the periodic image of ``second`` (zero in a molecule)
    lengths        (P,)    Angstrom: r0, the rest lengths
    constants      (P,)    eV/Angstrom^2: k, the spring constants
    anharmonicity  (P,)    1/Angstrom: a
    """

    first: np.ndarray
    second: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    constants: np.ndarray
    anharmonicity: np.ndarray
    n_atoms: int

    @classmethod
    def from_model(cls, model: TriDFTModel, atoms: ase.Atoms,
                   scale: float = BOND_SCALE) -> ValenceSprings:
        """Springs on the bonds and bond angles of ``atoms``, with the model's constants."""
        bonds, angles = valence_pairs(atoms, scale)
        first, second, offsets = (np.concatenate([b, a]) for b, a in zip(bonds, angles))
        vectors = atoms.positions[second] + offsets - atoms.positions[first]  # (P, 3)
        lengths = np.linalg.norm(vectors, axis=1)
        is_bond = np.arange(len(first)) < len(bonds[0])  # (P,): bonds first, then angles
        anharmonicity = np.where(is_bond, BOND_A, ANGLE_A)
        kinds = [(min(a, b), max(a, b), bond) for a, b, bond in
                 zip(atoms.numbers[first], atoms.numbers[second], is_bond)]
        measured = _measured_pairs(kinds)
        own = stretch_constants(model, atoms, first[measured], second[measured],
                                vectors[measured] / lengths[measured, None])
        constants = _per_kind(kinds, measured, own) if len(measured) < len(first) else own
        constants = np.maximum(constants, 0.0)
        return cls(first, second, offsets, lengths, constants, anharmonicity, len(atoms))

    def __len__(self) -> int:
        return len(self.first)

    def _distances(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vectors = positions[self.second] + self.offsets - positions[self.first]  # (P, 3)
        return vectors, np.linalg.norm(vectors, axis=1)  # (P,)

    def energy(self, positions: np.ndarray) -> float:
        """eV at ``positions`` (n, 3) Angstrom."""
        _, lengths = self._distances(positions)
        a = self.anharmonicity
        well = (1.0 - np.exp(-a * (lengths - self.lengths))) ** 2
        return float(np.sum(self.constants * well / (2 * a**2)))

    def forces(self, positions: np.ndarray) -> np.ndarray:
        """(n, 3) eV/Angstrom: -dE_ref/dR at ``positions`` (n, 3) Angstrom."""
        vectors, lengths = self._distances(positions)
        a = self.anharmonicity
        decay = np.exp(-a * (lengths - self.lengths))
        pull = -self.constants / a * (1.0 - decay) * decay  # -dE/dr, eV/Angstrom
        on_second = (pull / lengths)[:, None] * vectors
        forces = np.zeros((self.n_atoms, 3))
        np.add.at(forces, self.second, on_second)
        np.add.at(forces, self.first, -on_second)
        return forces


def _measured_pairs(kinds: list[tuple]) -> np.ndarray:
    """Indices of the pairs whose constants are computed: all of them, or (beyond
    OWN_CONSTANTS) the first SAMPLES_PER_KIND of every kind."""
    if len(kinds) <= OWN_CONSTANTS:
        return np.arange(len(kinds))
    seen: dict[tuple, int] = {}
    measured = []
    for index, kind in enumerate(kinds):
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] <= SAMPLES_PER_KIND:
            measured.append(index)
    return np.array(measured)


def _per_kind(kinds: list[tuple], measured: np.ndarray, constants: np.ndarray) -> np.ndarray:
    """(P,): for every pair the mean constant of the measured pairs of its kind."""
    sums: dict[tuple, list[float]] = {}
    for index, constant in zip(measured, constants):
        sums.setdefault(kinds[index], []).append(float(constant))
    return np.array([np.mean(sums[kind]) for kind in kinds])


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # first (P,), second (P,), offsets (P, 3)


def valence_pairs(atoms: ase.Atoms, scale: float = BOND_SCALE) -> tuple[Pairs, Pairs]:
    """(bonds, angle pairs) of ``atoms``, each once, offsets in Angstrom.

    Bonds: closer than ``scale`` x the sum of the covalent radii. Angle pairs: the two
    other ends of every two bonds that share an atom, unless bonded themselves."""
    centre, neighbour, shift = neighbor_list("ijS", atoms, natural_cutoffs(atoms, mult=scale))
    cell = np.asarray(atoms.cell) if atoms.pbc.any() else np.zeros((3, 3))
    once = centre < neighbour  # each bond once (and no atom bonded to its own image)
    bonds = (centre[once], neighbour[once], shift[once] @ cell)
    bonded = {(i, j, *s) for i, j, s in zip(centre, neighbour, shift.tolist())}
    angle_pairs = {}
    for c in np.unique(centre):
        ends = np.flatnonzero(centre == c)
        for m, x in enumerate(ends):
            for y in ends[m + 1:]:
                i, j = neighbour[x], neighbour[y]
                if i == j:  # an atom and its own image: a spring that pulls on nothing
                    continue
                offset = shift[y] - shift[x]  # from the image of i to the image of j
                if i > j:
                    i, j, offset = j, i, -offset
                if (i, j, *offset.tolist()) not in bonded:
                    angle_pairs.setdefault((i, j, *offset.tolist()), (i, j, offset))
    if not angle_pairs:
        return bonds, (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3)))
    first, second, offsets = zip(*angle_pairs.values())
    return bonds, (np.array(first), np.array(second), np.array(offsets) @ cell)


def stretch_constants(model: TriDFTModel, atoms: ase.Atoms, first: np.ndarray,
                      second: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(P,) eV/Angstrom^2: -u^T H[first, second] u for each pair, u = ``directions`` (P, 3).

    One Hessian-vector product per pair (H v with v = u on atom ``first``), batched
    CHUNK at a time, on a float64 copy of the model (second derivatives of float32 are
    noisy), on the model's device.
    """
    if len(first) == 0:
        return np.zeros(0)
    positions, gradient = energy_gradient(model, atoms)  # (n, 3) each
    device = positions.device
    as_tensor = partial(torch.as_tensor, device=device)
    directions_t = as_tensor(directions, dtype=torch.float64)  # (P, 3)
    constants = []
    for start in range(0, len(first), CHUNK):
        rows = slice(start, start + CHUNK)
        index = torch.arange(len(first[rows]), device=device)
        vectors = torch.zeros(len(first[rows]), *positions.shape, dtype=torch.float64,
                              device=device)  # (b, n, 3)
        vectors[index, as_tensor(first[rows])] = directions_t[rows]
        # H is symmetric: v^T H = H v.
        products = jacobian_rows(gradient.reshape(-1), positions,
                                 vectors.reshape(len(index), -1)).reshape(vectors.shape)
        on_second = products[index, as_tensor(second[rows])]  # (b, 3)
        constants.append(-(on_second * directions_t[rows]).sum(dim=1))
    return torch.cat(constants).detach().cpu().numpy()
