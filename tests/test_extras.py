"""matplotlib is an extra ('plot'): the library imports without it, the CLI asks for it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tridft.cli.main import main
from tridft.errors import MissingExtra

NO_MATPLOTLIB_AT_IMPORT = [
    "import sys, tridft.model, tridft.data, tridft.train; "
    "assert 'matplotlib' not in sys.modules",
    # The public face, the figure modules and the command line load it only to draw.
    "import sys, tridft, tridft.spectra.correlation, tridft.report.plots, tridft.transfer.inspect; "
    "from tridft.cli.main import build_parser; build_parser(); "
    "assert 'matplotlib' not in sys.modules",
]


@pytest.mark.parametrize("code", NO_MATPLOTLIB_AT_IMPORT)
def test_model_data_and_train_do_not_import_matplotlib(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def without_matplotlib(monkeypatch):
    """As if matplotlib were not installed: importing it raises ImportError."""
    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


@pytest.mark.parametrize("args", [
    ["evaluate", "model.pt", "data.extxyz", "--plots", "plots"],
    ["spectrum", "trajectory.extxyz"],
    ["vibrations", "model.pt", "molecule.xyz"],
    ["inspect", "model.pt", "data.extxyz"],
    ["demo", "--quick"],
])
def test_cli_asks_for_the_plot_extra_in_one_line(without_matplotlib, tmp_path, monkeypatch,
                                                 capsys, args):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "matplotlib is needed" in err and "pip install 'tridft[plot]'" in err
    assert list(tmp_path.iterdir()) == []  # asked before any work


def test_drawing_without_matplotlib_is_a_missing_extra(without_matplotlib, tmp_path):
    from tridft.report.plots import parity_plots
    from tridft.train.evaluate import Comparison

    values = np.arange(6.0)
    with pytest.raises(MissingExtra, match=r"tridft\[plot\]"):
        parity_plots({"energy_per_atom": Comparison(values, values)}, tmp_path / "p.png")
    with pytest.raises(ImportError):  # code that can do without it may catch ImportError
        parity_plots({"energy_per_atom": Comparison(values, values)}, tmp_path / "p.png")
