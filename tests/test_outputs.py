"""Outputs checked against inputs, stale temporaries, devices: the guards every command uses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tridft.devices import check_device
from tridft.errors import ConfigError, TriDFTError
from tridft.files import atomic_output, write_text_atomic
from tridft.outputs import check_outputs, same_file


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.extxyz"
    path.write_text("labels\n")
    return path


def test_an_output_that_is_an_input_is_refused_however_it_is_spelled(tmp_path, data):
    link, hard = tmp_path / "link.extxyz", tmp_path / "hard.extxyz"
    link.symlink_to(data)
    os.link(data, hard)
    for output in (data, link, hard, tmp_path / "." / "data.extxyz"):
        with pytest.raises(TriDFTError, match="destroy the input"):
            check_outputs({"-o": output}, inputs={"DATA": data})
    assert data.read_text() == "labels\n"
    check_outputs({"-o": tmp_path / "new.extxyz"}, inputs={"DATA": data})  # a new file is fine


def test_same_file_for_files_that_do_not_exist_yet(tmp_path):
    assert same_file(tmp_path / "a" / ".." / "x", tmp_path / "x")
    assert not same_file(tmp_path / "x", tmp_path / "y")


@pytest.mark.parametrize("problem", ["folder", "under a file", "long name", "device"])
def test_impossible_outputs_are_one_line_errors(tmp_path, problem):
    (tmp_path / "file").write_text("x")
    output = {"folder": tmp_path, "under a file": tmp_path / "file" / "out",
              "long name": tmp_path / ("x" * 300), "device": "/dev/null"}[problem]
    with pytest.raises(TriDFTError) as error:
        check_outputs({"-o": output})
    assert "\n" not in str(error.value)


def test_an_output_folder_must_be_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TriDFTError, match="not a folder"):
        check_outputs({}, folders={"--plots": tmp_path / "file"})
    check_outputs({}, folders={"--plots": tmp_path / "new" / "plots"})
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.txt.{dead.pid}.abcd.tmp"
    stale.write_text("half")
    alive = tmp_path / f".out.txt.{os.getpid()}.efgh.tmp"  # ours: not touched
    alive.write_text("half")
    write_text_atomic(tmp_path / "out.txt", "whole")
    assert not stale.exists() and alive.exists()
    assert (tmp_path / "out.txt").read_text() == "whole"


def test_a_failed_write_is_one_line_and_leaves_no_temporary(tmp_path):
    with pytest.raises(TriDFTError, match="cannot write"):
        with atomic_output(tmp_path / "out.txt") as temporary:
            temporary.write_text("x")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_devices_this_machine_does_not_have_are_config_errors():
    import torch

    assert check_device("cpu", "--device").type == "cpu"
    with pytest.raises(ConfigError, match="--device"):
        check_device("banana", "--device")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="training.device: cuda"):
            check_device("cuda", "training.device")
