"""One small adapter per code: build a model, turn structures into its input, predict.

Every adapter offers the same four calls, so that the training loop
(train_peer.py) and the speed measurement (speed.py) are written once:

    adapter.build(train_structures)        -> torch.nn.Module (float32)
    adapter.featurize(atoms)               -> one structure's input (graph built once)
    adapter.collate(items)                 -> one batch of inputs
    adapter.predict(model, batch, training)-> {"energy": (S,) eV, "forces": (N, 3) eV/A,
                                                "polarizability": (S, 3, 3) A^3}  (what it has)

Settings are each code's own small-model defaults, written out here so that
docs/benchmarks.md can quote them (``adapter.settings``).
"""

from __future__ import annotations

import numpy as np
import torch

import compat  # noqa: F401  (T_co shim; mace before e3nn)

CUTOFF = 5.0  # Angstrom, the same for every code


def reference_energies(structures, elements: list[int]) -> np.ndarray:
    """(len(elements),) eV: least-squares fit E ~ sum_Z count_Z e_Z on the training energies.

    The plain minimum-norm solution. tridft's own fit (tridft.data.references) is not
    importable in the peers' environment, and it also moves the references that the
    compositions leave undetermined to a common value, which the peers never did.
    """
    counts = np.array([[np.sum(s.atoms.numbers == z) for z in elements] for s in structures],
                      dtype=float)
    energies = np.array([s.energy for s in structures])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


class SchNetPackAdapter:
    """SchNetPack 2.1.1 PaiNN with Atomwise energy, Forces (-dE/dR) and Polarizability outputs."""

    name = "schnetpack"

    def __init__(self, tasks: tuple[str, ...], features: int = 64, interactions: int = 3):
        import schnetpack as spk

        self.spk = spk
        self.tasks = tasks
        self.settings = {"representation": "PaiNN", "n_atom_basis": features,
                         "n_interactions": interactions, "radial_basis": "GaussianRBF(20)",
                         "cutoff_fn": "CosineCutoff", "cutoff": CUTOFF,
                         "outputs": list(tasks), "dtype": "float32",
                         "energy_offsets": "per-element least-squares reference energies"}
        self.features, self.interactions = features, interactions
        self.converter = spk.interfaces.AtomsConverter(
            neighbor_list=spk.transform.MatScipyNeighborList(cutoff=CUTOFF), dtype=torch.float32)
        self.elements = [1, 6, 8]
        self.references = torch.zeros(119)

    def build(self, train_structures) -> torch.nn.Module:
        spk = self.spk
        if "energy" in self.tasks:
            fit = reference_energies(train_structures, self.elements)
            self.references[self.elements] = torch.tensor(fit, dtype=torch.float32)
        painn = spk.representation.PaiNN(
            n_atom_basis=self.features, n_interactions=self.interactions,
            radial_basis=spk.nn.GaussianRBF(n_rbf=20, cutoff=CUTOFF),
            cutoff_fn=spk.nn.CosineCutoff(CUTOFF))
        outputs = []
        if "energy" in self.tasks:
            outputs += [spk.atomistic.Atomwise(n_in=self.features, output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")]
        if "polarizability" in self.tasks:
            outputs.append(spk.atomistic.Polarizability(n_in=self.features,
                                                        polarizability_key="polarizability"))
        model = spk.model.NeuralNetworkPotential(
            representation=painn, input_modules=[spk.atomistic.PairwiseDistances()],
            output_modules=outputs, do_postprocessing=False)
        model.register_buffer("reference_energies", self.references.clone())
        return model.float()

    def featurize(self, atoms):
        # SchNetPack's polarizability head multiplies by absolute positions: centre
        # molecules (the usual SubtractCenterOfMass transform); cells stay as they are.
        if not atoms.pbc.any():
            atoms = atoms.copy()
            atoms.positions -= atoms.get_center_of_mass()
        return self.converter(atoms)

    def collate(self, items):
        from schnetpack.data.loader import _atoms_collate_fn

        return _atoms_collate_fn(items)

    def predict(self, model, batch, training: bool):
        batch = {key: value.clone() if key == "_positions" else value for key, value in batch.items()}
        out = model(batch)
        result = {}
        if "energy" in self.tasks:
            numbers = batch["_atomic_numbers"]
            offsets = torch.zeros_like(out["energy"]).index_add_(
                0, batch["_idx_m"], model.reference_energies[numbers])
            result["energy"] = out["energy"] + offsets
            result["forces"] = out["forces"]
        if "polarizability" in self.tasks:
            result["polarizability"] = out["polarizability"]
        return result


class MaceAdapter:
    """MACE 0.3.16: ScaleShiftMACE (energy, forces = -dE/dR) or AtomicDielectricMACE (polarizability)."""

    name = "mace"

    def __init__(self, tasks: tuple[str, ...], channels: int = 32, max_l: int = 1,
                 interactions: int = 2, correlation: int = 3):
        from e3nn import o3
        from mace import data as mace_data, modules, tools

        self.o3, self.mace_data, self.modules, self.tools = o3, mace_data, modules, tools
        self.tasks = tasks
        if "polarizability" in tasks and "energy" in tasks:
            raise ValueError("MACE: one model per kind here (energy+forces, or polarizability)")
        self.dielectric = "polarizability" in tasks
        self.elements = [1, 6, 8]
        self.z_table = tools.AtomicNumberTable(self.elements)
        irreps = " + ".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(max_l + 1))
        if self.dielectric:  # the dipole/polarizability readout needs even and odd l up to 2
            irreps = f"{channels}x0e + {channels}x1o + {channels}x2e"
        self.hidden_irreps = irreps
        self.interactions, self.correlation = interactions, correlation
        self.settings = {"model": "AtomicDielectricMACE" if self.dielectric else "ScaleShiftMACE",
                         "hidden_irreps": irreps, "max_ell": 3, "correlation": correlation,
                         "num_interactions": interactions, "num_bessel": 8,
                         "num_polynomial_cutoff": 5, "radial_MLP": [64, 64, 64],
                         "MLP_irreps": "16x0e", "r_max": CUTOFF, "outputs": list(tasks),
                         "dtype": "float32"}

    def _average_neighbors(self, items) -> float:
        edges = sum(int(item.edge_index.shape[1]) for item in items)
        atoms = sum(int(item.positions.shape[0]) for item in items)
        return edges / max(atoms, 1)

    def build(self, train_structures) -> torch.nn.Module:
        torch.set_default_dtype(torch.float32)
        modules, o3 = self.modules, self.o3
        sample = [self.featurize(s.atoms) for s in train_structures[:100]]
        common = dict(
            r_max=CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            num_interactions=self.interactions, num_elements=len(self.elements),
            hidden_irreps=o3.Irreps(self.hidden_irreps), MLP_irreps=o3.Irreps("16x0e"),
            avg_num_neighbors=self._average_neighbors(sample), atomic_numbers=self.elements,
            correlation=self.correlation, gate=torch.nn.functional.silu,
            radial_MLP=[64, 64, 64])
        if self.dielectric:
            model = modules.AtomicDielectricMACE(
                interaction_cls_first=modules.interaction_classes[
                    "RealAgnosticResidualInteractionBlock"],
                atomic_energies=None, dipole_only=False, use_polarizability=True, **common)
        else:
            fit = reference_energies(train_structures, self.elements)
            residual = [(s.energy - sum(fit[self.elements.index(z)] for z in s.atoms.numbers))
                        / len(s.atoms) for s in train_structures]
            forces = np.concatenate([s.forces.ravel() for s in train_structures])
            model = modules.ScaleShiftMACE(
                interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
                atomic_energies=fit, atomic_inter_scale=float(np.sqrt(np.mean(forces ** 2))),
                atomic_inter_shift=float(np.mean(residual)), **common)
        return model.float()

    def featurize(self, atoms):
        config = self.mace_data.config_from_atoms(atoms, self.mace_data.KeySpecification())
        return self.mace_data.AtomicData.from_config(config, z_table=self.z_table, cutoff=CUTOFF)

    def collate(self, items):
        from mace.tools import torch_geometric

        return torch_geometric.Batch.from_data_list(items)

    def predict(self, model, batch, training: bool):
        data = batch.to_dict()
        data["positions"] = data["positions"].clone()
        if self.dielectric:
            out = model(data, training=training)
            return {"polarizability": out["polarizability"]}
        out = model(data, training=training, compute_force=True)
        return {"energy": out["energy"], "forces": out["forces"]}


class TriDFTAdapter:
    """tridft itself (only in the tridft environment), for the speed measurement."""

    name = "tridft"

    def __init__(self, model_path: str, forces: str = "direct"):
        from tridft.data.batch import collate
        from tridft.data.record import Record
        from tridft.model.persistence import load_model

        self.model = load_model(model_path)
        self.model.eval()
        self._collate, self._record = collate, Record
        self.forces = forces
        self.settings = {"model": "tridft", "forces": forces,
                         "config": self.model.config.model_dump()}

    def featurize(self, atoms):
        cell = np.array(atoms.cell) if atoms.pbc.any() else None
        return self._record(numbers=np.array(atoms.numbers), positions=np.array(atoms.positions),
                            cell=cell, pbc=np.array(atoms.pbc))

    def collate(self, items):
        return self._collate(items, self.model.cutoff)

    def predict(self, model, batch, training: bool):
        # As tridft's ASE calculator runs it: no graph, except the one the model builds
        # itself for -dE/dR when asked for conservative forces.
        with torch.no_grad():
            return model(batch, forces=self.forces)


def make_adapter(code: str, tasks: tuple[str, ...]):
    if code == "schnetpack":
        return SchNetPackAdapter(tasks)
    if code == "mace":
        return MaceAdapter(tasks)
    raise ValueError(f"unknown peer code '{code}'")
