"""Probe cases about what comes out: the file system, concurrent runs, extrapolation."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys

from tests.probe import world as w
from tests.probe.harness import Case
from tridft.train.rundir import LOCK_NAME, RunDirLock


def filesystem_cases(world: w.World) -> list[Case]:
    model, data, start = str(world.model), str(world.data), str(world.start)
    protect = [world.model, world.data, world.start]
    link = world.path("data_link.extxyz")
    link.symlink_to(world.data)
    hard = world.path("data_hard.extxyz")
    os.link(world.data, hard)
    folder = world.path("a_folder")
    folder.mkdir()
    a_file = w.text_file(world, "a_file.txt", "keep me\n")
    long_name = str(world.path("x" * 300 + ".extxyz"))
    deep = str(world.path("/".join(["d" * 200] * 25)))
    unwritable = "/sys/tridft-probe/out.extxyz" if os.path.isdir("/sys") else "/out.extxyz"
    traj = world.path("traj.csv")  # a trajectory whose name is the spectrum's CSV
    relaxed = world.path("s_relaxed.extxyz")  # a structure named as vibrations' output
    relaxed.write_bytes(world.start.read_bytes())
    cases = [
        Case("predict -o onto its data", ["predict", model, data, "-o", data], "error",
             "filesystem", protect, contains="destroy the input"),
        Case("predict -o onto the model", ["predict", model, data, "-o", model], "error",
             "filesystem", protect),
        Case("predict -o onto a symlink of the data", ["predict", model, data, "-o", str(link)],
             "error", "filesystem", protect),
        Case("predict -o onto a hard link of the data", ["predict", model, data, "-o",
                                                          str(hard)], "error", "filesystem",
             protect),
        Case("predict -o ./data", ["predict", model, data, "-o",
                                   os.path.join(str(world.root), ".", "data.extxyz")],
             "error", "filesystem", protect),
        Case("predict -o is a folder", ["predict", model, data, "-o", str(folder)], "error",
             "filesystem", protect),
        Case("predict -o under a file", ["predict", model, data, "-o",
                                         str(a_file / "out.extxyz")], "error", "filesystem",
             protect + [a_file]),
        Case("predict -o name too long", ["predict", model, data, "-o", long_name], "error",
             "filesystem", protect),
        Case("predict -o path too long", ["predict", model, data, "-o", deep], "error",
             "filesystem", protect),
        Case("predict -o unwritable folder", ["predict", model, data, "-o", unwritable],
             "error", "filesystem", protect),
        Case("predict -o /dev/full (not a file)", ["predict", model, data, "-o", "/dev/full"],
             "error", "filesystem", protect),
        Case("predict: disk full", ["predict", model, data, "-o",
                                    str(world.path("full.extxyz"))], "error", "filesystem",
             protect, setup=_file_size_limit(4000), cleanup=_no_file_size_limit,
             check=_no_temporaries(world)),
        Case("predict removes a killed write's temporary", ["predict", model, data, "-o",
                                                            str(world.path("p.extxyz"))],
             "ok", "filesystem", protect, setup=_stale_temporary(world, "p.extxyz"),
             check=_no_temporaries(world)),
        Case("md -o onto its start structure", ["md", model, start, "-o", start, "--steps",
                                                "2", "--no-progress"], "error", "filesystem",
             protect),
        Case("md -o onto the model", ["md", model, start, "-o", model, "--steps", "2",
                                      "--no-progress"], "error", "filesystem", protect),
        Case("md -o is a folder", ["md", model, start, "-o", str(folder), "--steps", "2",
                                   "--no-progress"], "error", "filesystem", protect),
        Case("md: disk full", ["md", model, start, "-o", str(world.path("md_full.extxyz")),
                               "--steps", "40", "--interval", "1", "--no-progress"], "error",
             "filesystem", protect, setup=_file_size_limit(6000), cleanup=_no_file_size_limit),
        Case("md --device cuda", ["md", model, start, "-o", str(world.path("md_dev.extxyz")),
                                  "--device", "cuda:7", "--no-progress"], "error",
             "filesystem", protect),
        Case("evaluate --json onto the data", ["evaluate", model, data, "--json", data],
             "error", "filesystem", protect),
        Case("evaluate --json onto the model", ["evaluate", model, data, "--json", model],
             "error", "filesystem", protect),
        Case("evaluate --json is a folder", ["evaluate", model, data, "--json", str(folder)],
             "error", "filesystem", protect),
        Case("evaluate --plots is a file", ["evaluate", model, data, "--plots", str(a_file)],
             "error", "filesystem", protect + [a_file]),
        Case("spectrum -o onto its trajectory", ["spectrum", str(traj), "-o",
                                                 str(world.path("traj"))], "error",
             "filesystem", [traj], setup=lambda: traj.write_text("1\n\nH 0 0 0\n")),
        Case("vibrations -o onto its structure", ["vibrations", model, str(relaxed), "-o",
                                                  str(world.path("s"))], "error", "filesystem",
             [relaxed]),
        Case("finetune -o onto the model", ["finetune", model, data, "--property", "gap",
                                            "--kind", "structure_scalar", "-o", model],
             "error", "filesystem", protect),
        Case("sample -o is a folder", ["sample", "ethanol", "--n", "2", "-o", str(folder)],
             "error", "filesystem"),
        Case("label -o onto its input", ["label", data, "-o", data], "error", "filesystem",
             protect),
    ]
    for name, run_dir in (("is a file", a_file), ("unwritable", "/sys/tridft-probe-run"),
                          ("cannot be created", "/proc/tridft-probe-run"),
                          ("name too long", world.path("r" * 300))):
        config = world.config(f"rundir_{len(cases)}.yaml", run_dir)
        cases.append(Case(f"train: run_dir {name}", ["train", str(config), "--no-progress"],
                          "error", "filesystem", [a_file]))
    config = world.config("disk_full.yaml", world.path("run_full"))
    cases.append(Case("train: disk full", ["train", str(config), "--no-progress"], "error",
                      "filesystem", setup=_file_size_limit(20000),
                      cleanup=_no_file_size_limit))
    mode_run = world.path("run_modes")
    config = world.config("modes.yaml", mode_run)
    cases.append(Case("train: split.json has the mode of its siblings",
                      ["train", str(config), "--no-progress"], "ok", "filesystem",
                      check=lambda: _same_mode(mode_run / "split.json",
                                               mode_run / "config.yaml")))
    return cases


def concurrency_cases(world: w.World) -> list[Case]:
    run = world.path("run_shared")
    config = world.config("shared.yaml", run)
    lock = RunDirLock(run)
    run_files = [run / name for name in ("model.pt", "checkpoint.pt", "metrics.csv",
                                         "split.json", "config.yaml")]
    cwd = world.path("cwd_run")
    cwd.mkdir()
    (cwd / "model.pt").write_bytes(world.model.read_bytes())
    (cwd / "metrics.csv").write_text("mine\n")
    here = world.config("here.yaml", "")
    train = ["train", str(config), "--no-progress"]
    return [
        Case("train: a first run", train, "ok", "concurrency"),
        Case("train: a second fresh run over it", train, "error", "concurrency", run_files,
             contains="--overwrite"),
        Case("train: while another trainer holds the folder", train + ["--overwrite"], "error",
             "concurrency", run_files, contains="in use", setup=lock.acquire,
             cleanup=lock.release),
        Case("train: a stale lock of a dead process", train + ["--resume"], "ok",
             "concurrency", setup=_stale_lock(run),
             check=lambda: None if not (run / LOCK_NAME).exists() else "lock left behind"),
        Case("train: --resume continues", train + ["--resume", "--set",
                                                   "training.max_steps=4"], "ok",
             "concurrency"),
        Case("train: --overwrite replaces", train + ["--overwrite"], "ok", "concurrency"),
        Case("train: run_dir '' in a folder with my files", ["train", str(here),
                                                             "--no-progress"], "error",
             "concurrency", [cwd / "model.pt", cwd / "metrics.csv"], cwd=cwd),
        Case("train: run_dir holding the training data", ["train", str(world.config(
            "inside.yaml", cwd, train_file=cwd / "metrics.csv")), "--no-progress", "--overwrite"],
             "error", "concurrency", [cwd / "metrics.csv"]),
    ]


def extrapolation_cases(world: w.World) -> list[Case]:
    model = str(world.model)
    structures = {
        "scaled by 0.8": (w.scaled(world, 0.8), "warn"),
        "scaled by 0.4": (w.scaled(world, 0.4), "error"),
        "scaled by 1.5": (w.scaled(world, 1.5), "warn"),
        "in a 2 Angstrom periodic cell": (w.in_cell(world, 2.0), "error"),
        # a warning, or an error where a head (a dipole) has no meaning in a cell
        "in a 20 Angstrom periodic box": (w.in_cell(world, 20.0), "flag"),
        "one atom 5000 Angstrom away": (w.far_atom(world, 5000.0), "warn"),
        "a dense 576-atom cluster": (w.dense_cluster(world), "flag"),
        "nitrogen for oxygen": (_nitrogen(world), "error"),
    }
    cases = []
    for name, (atoms, expect) in structures.items():
        path = w.write_structure(world, f"x_{len(cases)}.extxyz", atoms)
        out = world.path(f"x_out_{len(cases)}.extxyz")
        cases.append(Case(f"predict: {name}", ["predict", model, str(path), "-o", str(out)],
                          expect, "extrapolation", [path, world.model],
                          check=_absent(out) if expect == "error" else None))
        cases.append(Case(f"md: {name}", ["md", model, str(path), "-o", str(out) + ".md",
                                          "--steps", "5", "--no-progress"],
                          "flag" if expect != "error" else "error", "extrapolation", [path]))
    scaled_labels = w.write_structure(world, "scaled_labels.extxyz", _scaled_labelled(world))
    cases.append(Case("evaluate: scaled by 0.8 with labels", ["evaluate", model,
                                                               str(scaled_labels)], "warn",
                      "extrapolation", contains="outside the training domain"))
    for name, kwargs, hint in (
            ("energies in kcal/mol", {"energy": 23.0605, "forces": 23.0605}, "kcal/mol"),
            ("energies in Hartree", {"energy": 1 / 27.2114, "forces": 1 / 27.2114}, "hartree"),
            ("polarizabilities in bohr^3", {"polarizability": 6.7483}, "bohr^3")):
        path = w.relabelled(world, f"units_{len(cases)}.extxyz", **kwargs)
        cases.append(Case(f"evaluate: {name}", ["evaluate", model, str(path)], "warn",
                          "extrapolation", contains=hint))
    cases.append(Case("evaluate: the training data", ["evaluate", model, str(world.data)],
                      "ok", "extrapolation"))
    cases.append(Case("spectrum: a trajectory with a NaN frame",
                      ["spectrum", str(w.nan_trajectory(world)), "-o",
                       str(world.path("nan_spectrum"))], "error", "extrapolation",
                      contains="NaN"))
    cases.append(Case("md: at a million kelvin", ["md", model, str(world.start), "-o",
                                                  str(world.path("hot.extxyz")), "--temperature",
                                                  "1e6", "--steps", "20", "--no-progress"],
                      "flag", "extrapolation"))
    violent = str(w.violent_model(world))
    cases.append(Case("md: a blow-up stops", ["md", violent, str(world.start), "-o",
                                              str(world.path("blown.extxyz")), "--steps", "20",
                                              "--forces", "direct", "--no-progress"], "error",
                      "extrapolation",
                      contains="blown up", check=_finite_frames(world.path("blown.extxyz"))))
    return cases


def _finite_frames(path):
    def check():
        import numpy as np
        from tridft.md.trajectory import read_trajectory, series

        if not path.exists():
            return None
        from tridft.errors import InputError

        try:
            frames = read_trajectory(path)
            values = series(frames, "energy"), series(frames, "temperature_K")
        except InputError as error:
            return f"the trajectory is damaged: {error}"
        return None if all(np.isfinite(v).all() for v in values) else "non-finite frames"
    return check


def _nitrogen(world):
    atoms = w.ethanol_atoms(world)
    atoms.numbers[atoms.numbers == 8] = 7
    return atoms


def _scaled_labelled(world):
    import ase.io

    frames = ase.io.read(world.data, index=":4")
    for atoms in frames:
        atoms.positions *= 0.8
    return frames


def _absent(path):
    return lambda: f"{path} was written" if path.exists() else None


def _same_mode(a, b) -> str | None:
    if not a.exists() or not b.exists():
        return f"{a} or {b} missing"
    mode_a, mode_b = stat.S_IMODE(a.stat().st_mode), stat.S_IMODE(b.stat().st_mode)
    return None if mode_a == mode_b else f"{a.name} {oct(mode_a)} but {b.name} {oct(mode_b)}"


def _file_size_limit(size: int):
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(
            resource.RLIMIT_FSIZE)[1]))
    return setup


def _no_file_size_limit():
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


def _no_temporaries(world):
    def check():
        left = [p.name for p in world.root.glob(".*.tmp")]
        return f"temporary files left: {left}" if left else None
    return check


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _stale_temporary(world, name):
    return lambda: world.path(f".{name}.{_dead_pid()}.abc123.tmp").write_text("half")


def _stale_lock(run):
    def setup():
        run.mkdir(parents=True, exist_ok=True)
        (run / LOCK_NAME).write_text(f"pid {_dead_pid()}\nhost here\nsince then\n")
    return setup
