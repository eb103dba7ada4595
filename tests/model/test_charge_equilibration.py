"""Charge equilibration: the charges minimise the electrostatic energy of each molecule."""

from __future__ import annotations

import math

import torch

from tridft.model.charge_equilibration import equilibrated_charges


def molecule(n_atoms: int, seed: int, offset: float = 0.0):
    """Random chi (N,), J (N,), sigma (N,), positions (N, 3) of one molecule, float64."""
    generator = torch.Generator().manual_seed(seed)
    chi = torch.randn(n_atoms, generator=generator, dtype=torch.float64)
    hardness = torch.rand(n_atoms, generator=generator, dtype=torch.float64)
    widths = 0.3 + 0.7 * torch.rand(n_atoms, generator=generator, dtype=torch.float64)
    positions = 3.0 * torch.rand(n_atoms, 3, generator=generator, dtype=torch.float64) + offset
    return chi, hardness, widths, positions


def energy(charges, chi, hardness, widths, positions):
    """E(q) of the module docstring, written out pair by pair."""
    total = (chi * charges + 0.5 * (hardness + 1 / (widths * math.sqrt(math.pi)))
             * charges ** 2).sum()
    for i in range(len(charges)):
        for j in range(i + 1, len(charges)):
            r = torch.linalg.norm(positions[i] - positions[j])
            gamma = torch.erf(r / torch.sqrt(2 * (widths[i] ** 2 + widths[j] ** 2))) / r
            total = total + charges[i] * charges[j] * gamma
    return total


def solve(parts, total_charge=0.0):
    chi, hardness, widths, positions = parts
    index = torch.zeros(len(chi), dtype=torch.long)
    return equilibrated_charges(chi, hardness, widths, positions, index,
                                torch.tensor([total_charge], dtype=torch.float64))


def test_the_charges_are_the_constrained_minimum_of_the_energy():
    """At the minimum on sum q = Q, dE/dq_i is the same for every atom (the Lagrange
    multiplier), and moving charge between two atoms raises the energy."""
    parts = molecule(7, seed=0)
    charges = solve(parts, total_charge=-1.0)
    assert abs(float(charges.sum()) + 1.0) < 1e-12
    charges.requires_grad_(True)
    (gradient,) = torch.autograd.grad(energy(charges, *parts), charges)
    assert float(gradient.max() - gradient.min()) < 1e-10, gradient
    minimum = float(energy(charges.detach(), *parts))
    for i, j in ((0, 3), (2, 6)):
        moved = charges.detach().clone()
        moved[i] += 1e-3
        moved[j] -= 1e-3
        assert float(energy(moved, *parts)) > minimum


def test_a_batch_solves_each_molecule_on_its_own():
    """Block-diagonal: the batch gives each molecule the charges it gets alone, even with
    the two molecules on top of each other in space."""
    first, second = molecule(5, seed=1), molecule(9, seed=2)
    alone = [solve(first, 0.0), solve(second, 1.0)]
    joined = [torch.cat([a, b]) for a, b in zip(first, second)]
    index = torch.cat([torch.zeros(5), torch.ones(9)]).long()
    batch = equilibrated_charges(*joined, index, torch.tensor([0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(batch, torch.cat(alone), rtol=0, atol=1e-12)
    same_place = [torch.cat([a, a]) for a in first]  # a duplicate at identical positions
    twins = equilibrated_charges(*same_place, torch.cat([torch.zeros(5), torch.ones(5)]).long(),
                                 torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(twins, torch.cat([alone[0], alone[0]]), rtol=0, atol=1e-12)


def test_charge_flows_to_a_distant_electronegative_atom():
    """Unlike charges read off each atom's environment, an atom's charge changes when the
    electronegativity of an atom far away does (here 12 Angstrom along a chain)."""
    n = 9
    positions = torch.zeros(n, 3, dtype=torch.float64)
    positions[:, 0] = 1.5 * torch.arange(n, dtype=torch.float64)
    chi = torch.zeros(n, dtype=torch.float64)
    hardness = torch.full((n,), 0.2, dtype=torch.float64)
    widths = torch.full((n,), 0.7, dtype=torch.float64)
    before = solve((chi, hardness, widths, positions))
    chi_far = chi.clone()
    chi_far[-1] = -1.0  # the last atom becomes more electronegative (E falls with q)
    after = solve((chi_far, hardness, widths, positions))
    assert float(after[-1]) > float(before[-1]) + 0.05
    assert float(after[0]) < float(before[0]) - 1e-3, "the far end did not respond"


def test_gradients_with_respect_to_positions_match_finite_differences():
    """The dipole's derivatives (IR intensities) go through the solve."""
    chi, hardness, widths, positions = molecule(6, seed=3)

    def dipole(x):
        return (solve((chi, hardness, widths, x)).unsqueeze(-1) * x).sum(0)

    assert torch.autograd.gradcheck(dipole, (positions.clone().requires_grad_(True),))
