"""Trajectories stay readable when the writer dies: every complete frame is kept."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import ase
import numpy as np
import pytest

from tridft.errors import InputError
from tridft.md.trajectory import TrajectoryWriter, read_trajectory, series


def water(step: int) -> ase.Atoms:
    return ase.Atoms("OH2", positions=[[0, 0, 0.1 * step], [0.76, 0.59, 0], [-0.76, 0.59, 0]])


def write_frames(path, n: int) -> None:
    with TrajectoryWriter(path) as writer:
        for step in range(n):
            writer.write(water(step), info={"time_fs": 0.5 * step, "energy": -float(step),
                                            "polarizability": np.eye(3).ravel() * step},
                         arrays={"forces": np.full((3, 3), float(step))})


def test_frames_round_trip_with_their_keys(tmp_path):
    path = tmp_path / "traj.extxyz"
    write_frames(path, 4)
    frames = read_trajectory(path)
    assert len(frames) == 4
    np.testing.assert_allclose(series(frames, "time_fs"), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(series(frames, "energy"), [0.0, -1.0, -2.0, -3.0])
    np.testing.assert_allclose(series(frames, "polarizability", (3, 3))[2], 2 * np.eye(3))
    np.testing.assert_allclose(series(frames, "forces")[3], np.full((3, 3), 3.0))
    np.testing.assert_allclose(frames[1].positions[0], [0, 0, 0.1])


@pytest.mark.parametrize("cut", [1, 10, 60, -90, -2, -1])
def test_a_frame_cut_anywhere_is_dropped_and_the_rest_kept(tmp_path, cut):
    path = tmp_path / "traj.extxyz"
    write_frames(path, 3)
    data = path.read_bytes()
    last_frame_start = data.rindex(b"3\nProperties")
    end = last_frame_start + cut if cut > 0 else len(data) + cut
    path.write_bytes(data[:end])
    frames = read_trajectory(path)
    assert len(frames) == 2
    np.testing.assert_allclose(series(frames, "energy"), [0.0, -1.0])


def test_a_damaged_frame_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "traj.extxyz"
    write_frames(path, 3)
    lines = path.read_text().splitlines(keepends=True)
    lines[5] = "garbage\n"  # the atom-count line of the second frame
    path.write_text("".join(lines))
    with pytest.raises(InputError, match="frame 1: expected an atom count"):
        read_trajectory(path)


def test_an_empty_or_missing_file_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_trajectory(tmp_path / "missing.extxyz")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(InputError, match="no complete frame"):
        read_trajectory(tmp_path / "empty.extxyz")


WRITER = textwrap.dedent("""
    import sys
    import ase
    import numpy as np
    from tridft.md.trajectory import TrajectoryWriter

    writer = TrajectoryWriter(sys.argv[1])
    atoms = ase.Atoms("C20", positions=np.arange(60.0).reshape(20, 3))
    step = 0
    while True:  # as fast as possible, until killed
        writer.write(atoms, info={"time_fs": float(step), "energy": float(step)},
                     arrays={"forces": np.full((20, 3), float(step))})
        step += 1
""")


def test_a_writer_killed_with_sigkill_leaves_a_readable_trajectory(tmp_path):
    path = tmp_path / "traj.extxyz"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 200_000:  # a few hundred frames
                break
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    frames = read_trajectory(path)
    assert len(frames) > 50
    energies = series(frames, "energy")
    # Frames are complete and in order: 0, 1, 2, ... with matching forces.
    np.testing.assert_array_equal(energies, np.arange(len(frames)))
    np.testing.assert_array_equal(series(frames, "forces")[-1],
                                  np.full((20, 3), energies[-1]))
