"""Atomic writes: the file is either the old one or the whole new one."""

from __future__ import annotations

import json

import pytest

from tridft.files import atomic_output, write_json_atomic


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_json_written_whole_into_new_folder(tmp_path):
    path = tmp_path / "new" / "metrics.json"
    write_json_atomic(path, {"energy_mae": 0.1})
    assert json.loads(path.read_text()) == {"energy_mae": 0.1}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_new_file_has_the_usual_permissions(tmp_path):
    """Not the private 0600 of a temporary file: what open() would have made."""
    import os

    write_json_atomic(tmp_path / "a.json", {})
    (tmp_path / "b.json").write_text("{}")
    assert os.stat(tmp_path / "a.json").st_mode == os.stat(tmp_path / "b.json").st_mode
