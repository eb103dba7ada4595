"""The run folder: one trainer at a time, stale locks taken over, nobody's files replaced."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tridft.errors import TriDFTError
from tridft.train.rundir import LOCK_NAME, RunDirLock, check_run_dir, lock_holder

HOLD = """
import sys, time
from tridft.train.rundir import RunDirLock
lock = RunDirLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_folder_locked_by_another_process_is_refused_until_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert f"process {holder.pid}" in lock_holder(tmp_path)
        with pytest.raises(TriDFTError, match="in use by another training"):
            check_run_dir(tmp_path, resume=False, overwrite=True)
        with pytest.raises(TriDFTError, match=f"process {holder.pid}"):
            RunDirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # Killed: the kernel dropped its lock; the file it left is stale and taken over.
    assert (tmp_path / LOCK_NAME).exists() and lock_holder(tmp_path) == ""
    with RunDirLock(tmp_path):
        assert "pid" in (tmp_path / LOCK_NAME).read_text()
    assert not (tmp_path / LOCK_NAME).exists()  # released on exit


def test_a_fresh_run_refuses_run_files_unless_told_to_overwrite(tmp_path):
    (tmp_path / "model.pt").write_text("someone's model")
    with pytest.raises(TriDFTError, match="--overwrite"):
        check_run_dir(tmp_path, resume=False, overwrite=False)
    check_run_dir(tmp_path, resume=False, overwrite=True)
    (tmp_path / "checkpoint.pt").write_text("a run")
    check_run_dir(tmp_path, resume=True, overwrite=False)  # continuing it is fine
    assert (tmp_path / "model.pt").read_text() == "someone's model"


def test_a_new_or_empty_folder_is_fine_and_checking_creates_nothing(tmp_path):
    check_run_dir(tmp_path / "new" / "run", resume=False, overwrite=False)
    assert not (tmp_path / "new").exists()
    start = time.monotonic()
    check_run_dir(tmp_path, resume=False, overwrite=False)
    assert time.monotonic() - start < 1.0
