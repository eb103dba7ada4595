"""The plain-text and markdown tables show every metric with its value and unit."""

from __future__ import annotations

from pathlib import Path

from tridft.report.summary import format_table, format_value, write_markdown_report

METRICS = {"n_structures": 80, "energy_mae": 0.012345678, "forces_mae": 0.05,
           "polarizability_iso_mae": 0.0031, "jacobian_consistency_mae": 0.004, "gap_mae": 0.2}


def test_table_lines_show_name_value_and_unit():
    lines = format_table(METRICS, title="test set").splitlines()
    assert lines[0] == "test set"
    energy = next(line for line in lines if "energy MAE" in line)
    assert energy.split()[-2:] == ["0.01235", "eV"]
    forces = next(line for line in lines if "force MAE" in line)
    assert forces.endswith("eV/A")
    assert any(line.split() == ["structures", "80"] for line in lines)
    # A metric the table does not know is still shown, under its own key.
    assert any(line.split() == ["gap_mae", "0.2"] for line in lines)
    # Values are right-aligned in one column.
    value_ends = {line.index(format_value(v)) + len(format_value(v))
                  for line in lines[1:] for v in METRICS.values() if format_value(v) in line}
    assert len(value_ends) == 1


def test_markdown_report_links_plots_relative_to_itself(tmp_path):
    plot = tmp_path / "plots" / "parity.png"
    plot.parent.mkdir()
    plot.write_bytes(b"png")
    path = write_markdown_report(tmp_path / "report.md", METRICS, {"parity plots": plot},
                                 title="demo", details={"model": "model.pt"})
    text = path.read_text()
    assert text.startswith("# demo")
    assert "| energy MAE | 0.01235 | eV |" in text
    # Every table row has exactly its four cell borders (names like |F + dE/dR| are escaped).
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.replace("\\|", "").count("|") == 4 for line in rows)
    link = text.split("![parity plots](")[1].split(")")[0]
    assert not Path(link).is_absolute()
    assert (tmp_path / link).resolve() == plot.resolve()
