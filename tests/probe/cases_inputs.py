"""Probe cases about what goes in: structure files, configurations, model files."""

from __future__ import annotations

import re

from tests.probe import world as w
from tests.probe.harness import Case


def data_cases(world: w.World) -> list[Case]:
    """Broken structure files, each through `tridft data` and most through predict/train."""
    frame = "\n".join(w.frame_text(world))

    def replace_line(k, old, new):
        def edit(lines):
            lines[k] = lines[k].replace(old, new, 1)
        return edit

    def comment_edit(pattern, new):
        def edit(lines):
            lines[1] = re.sub(pattern, new, lines[1])
        return edit

    broken = {
        "huge atom count": w.text_file(world, "huge.extxyz", "999999999\n"
                                       "Properties=species:S:1:pos:R:3\nH 0 0 0\n"),
        "negative atom count": w.text_file(world, "negative.xyz", "-3\n\nH 0 0 0\n"),
        "truncated frame": w.text_file(world, "truncated.extxyz", frame + "\n" + frame[:300]),
        "count not a number": w.text_file(world, "nocount.xyz", "three\n\nH 0 0 0\n"),
        "empty file": w.text_file(world, "empty.extxyz", ""),
        "random bytes": w.text_file(world, "random.extxyz", bytes(range(256)) * 8),
        "NaN position": w.edited_frame(world, "nanpos.extxyz",
                                       lambda lines: lines.__setitem__(
                                           3, re.sub(r"^(\S+\s+)\S+", r"\1nan", lines[3]))),
        "unknown element": w.edited_frame(world, "element.extxyz",
                                          lambda lines: lines.__setitem__(
                                              2, "Qq" + lines[2][1:])),
        "NaN energy": w.edited_frame(world, "nanenergy.extxyz",
                                     comment_edit(r"energy=\S+", "energy=nan")),
        "energy is text": w.edited_frame(world, "textenergy.extxyz",
                                         comment_edit(r"energy=\S+", "energy=high")),
        "polarizability of 8 numbers": w.edited_frame(
            world, "alpha8.extxyz",
            comment_edit(r'polarizability="(\S+) ', 'polarizability="')),
        "asymmetric polarizability": w.edited_frame(
            world, "asym.extxyz", comment_edit(r'polarizability="(\S+) (\S+)',
                                               r'polarizability="\1 9.0')),
        "singular lattice": w.edited_frame(
            world, "singular.extxyz",
            comment_edit(r'pbc="[TF ]*"', 'Lattice="1 0 0 2 0 0 0 0 1" pbc="T T T"')),
        "coincident atoms": w.write_structure(world, "coincident.extxyz",
                                              _coincident(world)),
        "atom 1e6 Angstrom away": w.write_structure(world, "far.extxyz",
                                                    w.far_atom(world, 1e6)),
        "missing file": world.path("no_such_file.extxyz"),
        "a folder": world.root,
    }
    cases = []
    for name, path in broken.items():
        cases.append(Case(f"data: {name}", ["data", str(path)], "error", "data",
                          protect=[path] if path.is_file() else []))
    for name in ("huge atom count", "truncated frame", "NaN position", "unknown element",
                 "atom 1e6 Angstrom away", "coincident atoms", "random bytes"):
        path = broken[name]
        cases.append(Case(f"predict: {name}", ["predict", str(world.model), str(path), "-o",
                                               str(world.path("p_bad.extxyz"))],
                          "error", "data", protect=[path, world.model]))
    for name in ("atom 1e6 Angstrom away", "NaN energy", "huge atom count"):
        path = broken[name]
        config = world.config(f"bad_{len(cases)}.yaml", world.path(f"run_bad_{len(cases)}"),
                              train_file=path)
        cases.append(Case(f"train: {name}", ["train", str(config), "--no-progress"], "error",
                          "data", protect=[path]))
    for name in ("atom 1e6 Angstrom away", "coincident atoms"):
        cases.append(Case(f"md: {name}", ["md", str(world.model), str(broken[name]), "-o",
                                          str(world.path("md_bad.extxyz")), "--steps", "3",
                                          "--no-progress"], "error", "data"))
    unlabelled = w.unlabelled(world, "unlabelled.extxyz")
    config = world.config("unlabelled.yaml", world.path("run_unlabelled"), train_file=unlabelled)
    cases.append(Case("train: no labels in the file", ["train", str(config), "--no-progress"],
                      "error", "data", contains="no training structure carries a label",
                      check=_absent(world.path("run_unlabelled") / "model.pt")))
    config = world.config("nokeys.yaml", world.path("run_nokeys"),
                          data={"train": str(world.data), "keys": {
                              "energy": None, "forces": None, "polarizability": None,
                              "dipole": None},
                              "split": {"validation": 2, "test": 0}})
    cases.append(Case("train: every label switched off", ["train", str(config),
                                                         "--no-progress"], "error", "data"))
    cases.append(Case("data: the good file", ["data", str(world.data)], "ok", "data"))
    cases.append(Case("data: unknown unit", ["data", str(world.data), "--units", "energy=eV2"],
                      "error", "data"))
    cases.append(Case("data: bad --keys", ["data", str(world.data), "--keys", "energy"],
                      "error", "data"))
    return cases


def _coincident(world: w.World):
    atoms = w.ethanol_atoms(world)
    atoms.positions[1] = atoms.positions[0]
    return atoms


def _nothing_written(folder):
    """A run that stopped before training leaves no run files behind."""
    def check():
        left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        return f"{folder.name} holds {left}" if left else None
    return check


def _absent(path):
    return lambda: f"{path} was written" if path.exists() else None


def config_cases(world: w.World) -> list[Case]:
    bad_values = {
        "max_steps: true": {"training": {"max_steps": True}},
        "lr: false": {"training": {"lr": False}},
        "lr is text": {"training": {"lr": "fast"}},
        "unknown key": {"training": {"max_step": 3}},
        "unknown section": {"trainig": {}},
        "batch_size 0": {"training": {"batch_size": 0}},
        "no limit at all": {"training": {"max_steps": None}},
        "all loss weights zero": {"loss": {"weights": {"energy": 0}}},
        "weight true": {"loss": {"weights": {"energy": True}}},
        "unknown task": {"loss": {"weights": {"gap": 1.0}}},
        "features true": {"model": {"features": True}},
        "negative cutoff": {"model": {"cutoff": -1.0}},
        "device cuda on a CPU torch": {"training": {"device": "cuda"}},
        "device tpu": {"training": {"device": "tpu"}},
        "split leaves nothing": {"data": {"train": str(world.data),
                                          "split": {"validation": 6, "test": 6}}},
        "missing train file": {"data": {"train": str(world.path("nothing.extxyz"))}},
        "unknown unit": {"data": {"train": str(world.data), "units": {"energy": "furlong"}}},
        "max_structures 0": {"data": {"train": str(world.data), "max_structures": 0}},
    }
    cases = []
    for k, (name, sections) in enumerate(bad_values.items()):
        if name == "unknown section":
            path = world.path(f"config_{k}.yaml")
            path.write_text("trainig:\n  lr: 0.1\n")
        else:
            path = world.config(f"config_{k}.yaml", world.path(f"run_config_{k}"), **sections)
        if name == "device cuda on a CPU torch":
            import torch
            if torch.cuda.is_available():
                continue  # a real GPU: that configuration is fine here
        cases.append(Case(f"config: {name}", ["train", str(path), "--no-progress"], "error",
                          "config", check=_nothing_written(world.path(f"run_config_{k}"))))
    invalid = w.text_file(world, "invalid.yaml", "training: [unclosed\n")
    cases += [
        Case("config: not YAML", ["train", str(invalid)], "error", "config"),
        Case("config: missing file", ["train", str(world.path("none.yaml"))], "error",
             "config"),
        Case("config: a folder", ["train", str(world.root)], "error", "config"),
        Case("config: --set without =", ["train", "--set", "training.lr"], "error", "config"),
        Case("config: --set into a value", ["train", "--set", "training.lr.x=1"], "error",
             "config"),
        Case("config: --set bad YAML", ["train", "--set", "training.lr=[1"], "error", "config"),
    ]
    return cases


def model_cases(world: w.World) -> list[Case]:
    files = {
        "random bytes": w.text_file(world, "random.pt", bytes(range(256)) * 16),
        "a text file": w.text_file(world, "text.pt", "not a model\n"),
        "an empty file": w.text_file(world, "empty.pt", b""),
        "half a model": w.text_file(world, "half.pt", world.model.read_bytes()[:2000]),
        "NaN weights": w.nan_model(world),
        "a pickle that runs code": w.evil_model(world),
        "plain data, not a model": _plain_torch_file(world),
        "a structure file": world.data,
        "missing": world.path("missing.pt"),
        "a folder": world.run,
    }
    cases = []
    for name, path in files.items():
        expected = {"random bytes": "not a PyTorch file", "NaN weights": "NaN",
                    "a pickle that runs code": "Python objects"}.get(name)
        cases.append(Case(f"model: {name} (info)", ["info", str(path)], "error", "model",
                          contains=expected, protect=[path] if path.is_file() else []))
        if name in ("random bytes", "NaN weights", "half a model", "a pickle that runs code"):
            cases.append(Case(f"model: {name} (predict)",
                              ["predict", str(path), str(world.data), "-o",
                               str(world.path("p_model.extxyz"))], "error", "model",
                              contains=expected, protect=[world.data]))
    cases.append(Case("model: NaN weights (md)", ["md", str(files["NaN weights"]),
                                                  str(world.start), "-o",
                                                  str(world.path("md_nan.extxyz")), "--steps",
                                                  "2", "--no-progress"], "error", "model"))
    cases.append(Case("model: a checkpoint is a model", ["info", str(world.run /
                                                                 "checkpoint.pt")], "ok",
                      "model"))
    return cases


def _plain_torch_file(world: w.World):
    import torch

    path = world.path("plain.pt")
    torch.save({"weights": [1, 2, 3]}, path)
    return path
