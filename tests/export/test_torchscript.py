"""The exported TorchScript program runs where tridft cannot be imported and matches the model."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.physics.helpers import (_ethanol_frames, perturbed_model, record_from_atoms,
                                   silicon_atoms, water_box_atoms)
from tridft.cli.main import main
from tridft.data.batch import collate
from tridft.export.neighbors import neighbor_list
from tridft.export.torchscript import export_model
from tridft.model.inference import run_model
from tridft.model.persistence import save_model

# Runs in a fresh interpreter: isolated (-I: no current folder, no PYTHONPATH) and with
# tridft made unimportable, so the program can only rely on torch.
FOREIGN_PROCESS = textwrap.dedent("""
    import sys
    sys.modules["tridft"] = None
    try:
        import tridft
    except ImportError:
        pass
    else:
        raise SystemExit("tridft is importable")
    import torch
    program = torch.jit.load(sys.argv[1])
    structures = torch.load(sys.argv[2])
    results = [program(s["positions"], s["numbers"], s["cell"], s["pbc"]) for s in structures]
    own = structures[-1]
    results.append(program.compute(own["positions"], own["numbers"], own["cell"], own["pbc"],
                                   own["edge_index"], own["cell_shifts"]))
    assert not any(name.startswith("tridft") for name in sys.modules if sys.modules[name])
    torch.save(results, sys.argv[3])
    print(program.cutoff)
""")


def structures():
    return [record_from_atoms(_ethanol_frames()[0]), record_from_atoms(_ethanol_frames()[3]),
            record_from_atoms(water_box_atoms()), record_from_atoms(water_box_atoms(3)),
            record_from_atoms(silicon_atoms())]


def as_inputs(record, cutoff):
    cell = np.zeros((3, 3)) if record.cell is None else record.cell
    inputs = {"positions": torch.tensor(record.positions), "numbers": torch.tensor(record.numbers),
              "cell": torch.tensor(cell), "pbc": torch.tensor(np.asarray(record.pbc))}
    inputs["edge_index"], inputs["cell_shifts"] = neighbor_list(
        inputs["positions"], inputs["cell"], inputs["pbc"], cutoff)
    return inputs


def test_the_program_runs_without_tridft_and_matches_the_model(tmp_path):
    model = perturbed_model(seed=7, dtype="float32")
    model.elements = [1, 6, 8, 14]
    program = tmp_path / "model.ts"
    export_model(model, program)
    records = structures()
    torch.save([as_inputs(r, model.cutoff) for r in records], tmp_path / "inputs.pt")
    done = subprocess.run([sys.executable, "-I", "-c", FOREIGN_PROCESS, str(program),
                           str(tmp_path / "inputs.pt"), str(tmp_path / "outputs.pt")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == model.cutoff
    results = torch.load(tmp_path / "outputs.pt")
    torch_dtype = next(model.parameters()).dtype
    for record, got in zip(records + records[-1:], results):
        batch = collate([record], model.cutoff, dtype=torch_dtype)
        expected = run_model(model, batch, forces="both", stress=record.is_periodic)
        for name in ("energy", "forces", "conservative_forces", "polarizability"):
            reference = expected[name].double()
            error = float((got[name].double().reshape(reference.shape) - reference).abs().max())
            assert error <= 1e-5 * float(reference.abs().max()), (name, error)
        if record.is_periodic:
            stress = expected["stress"][0]
            assert float((got["stress"] - stress).abs().max()) <= 1e-5 * float(
                stress.abs().max()) + 1e-9
        else:
            assert torch.all(got["stress"] == 0)


def test_the_export_command_writes_a_described_program(tmp_path, capsys):
    model_file = tmp_path / "model.pt"
    save_model(perturbed_model(seed=2, dtype="float32"), model_file)
    assert main(["export", str(model_file), "-o", str(tmp_path / "m.ts")]) == 0
    assert "largest relative deviation" in capsys.readouterr().out
    extra = {"tridft.json": ""}
    torch.jit.load(str(tmp_path / "m.ts"), _extra_files=extra)
    description = json.loads(extra["tridft.json"])
    assert description["units"]["stress"] == "eV/Angstrom^3"
    assert description["check_deviations"]["energy"] <= 1e-5


def test_a_float64_model_exports_exactly(tmp_path):
    from tridft.export.torchscript import build_program, check_program

    model = perturbed_model(seed=3)
    deviations = check_program(build_program(model), model)
    assert max(deviations.values()) < 1e-10


def test_the_torchscript_neighbour_list_is_vesins():
    from tridft.data.neighbors import neighbor_list as reference

    rng = np.random.default_rng(0)
    for atoms in (water_box_atoms(), silicon_atoms(), _ethanol_frames()[0].copy()):
        if atoms.pbc.any():  # atoms outside the cell must be found all the same
            atoms.positions += rng.normal(scale=5.0, size=atoms.positions.shape)
        edges, shifts = neighbor_list(torch.tensor(atoms.positions),
                                      torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc),
                                      5.0)
        expected = reference(atoms.positions, 5.0,
                             atoms.cell.array if atoms.pbc.any() else None, atoms.pbc)
        ours = sorted(zip(*edges.tolist(), *shifts.round().long().T.tolist()))
        theirs = sorted(zip(expected.centers.tolist(), expected.neighbors.tolist(),
                            *expected.shifts.T.tolist()))
        assert ours == theirs


@pytest.mark.parametrize("charges", ["local", "equilibrated"])
def test_a_dipole_head_exports_and_is_left_out_for_cells(charges):
    from tridft.export.torchscript import build_program, check_program
    from tridft.model.extra_heads import DipoleHead

    model = perturbed_model(seed=4)
    c = model.config
    model.add_head(DipoleHead("dipole", c.latent_scalar_width, c.latent_vector_width,
                              c.head_hidden, charges=charges).to(torch.float64))
    program = build_program(model)
    assert check_program(program, model)["energy"] < 1e-10
    molecule = as_inputs(record_from_atoms(_ethanol_frames()[0]), model.cutoff)
    out = program(molecule["positions"], molecule["numbers"], molecule["cell"], molecule["pbc"])
    batch = collate([record_from_atoms(_ethanol_frames()[0])], model.cutoff,
                    dtype=torch.float64)
    assert torch.allclose(out["dipole"], model(batch)["dipole"].detach(), atol=1e-10)
    # A cell gets everything but the dipole, which is undefined there (as in Python).
    cell = as_inputs(record_from_atoms(water_box_atoms()), model.cutoff)
    out = program(cell["positions"], cell["numbers"], cell["cell"], cell["pbc"])
    assert "dipole" not in out and {"energy", "conservative_forces", "stress"} <= set(out)
