"""The probe corpus: well over 100 hostile or clumsy uses of the command line.

Every case runs `tridft ...` in-process (tests/probe/harness.py) on files built in a
temporary folder (tests/probe/world.py): broken structure files, configurations and
model files, outputs aimed at inputs, full and unwritable disks, two trainers on one
folder, and structures far from what the model was trained on. The corpus must give
a one-line error or a warning wherever one is due, and never a traceback, a silent
wrong output or a lost file. The counts are printed (pytest -s) and checked.
"""

from __future__ import annotations

import time

import pytest

from tests.probe import cases_effects, cases_inputs
from tests.probe.harness import run_case, summarise
from tests.probe.world import build_world

AREAS = ("data", "config", "model", "filesystem", "concurrency", "extrapolation")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    started = time.monotonic()
    world = build_world(tmp_path_factory.mktemp("probe"))
    cases = (cases_inputs.data_cases(world) + cases_inputs.config_cases(world)
             + cases_inputs.model_cases(world) + cases_effects.filesystem_cases(world)
             + cases_effects.concurrency_cases(world)
             + cases_effects.extrapolation_cases(world))
    results = [run_case(case) for case in cases]
    return results, time.monotonic() - started


def test_corpus_counts(outcomes):
    results, seconds = outcomes
    counts = summarise(results)
    per_area = {area: sum(o.case.area == area for o in results) for area in AREAS}
    print(f"\nprobe corpus: {counts} in {seconds:.0f} s; cases per area: {per_area}")
    assert counts["cases"] >= 100
    assert all(per_area.values()), per_area
    assert counts["tracebacks"] == 0, [o.case.name for o in results if o.traceback]
    assert counts["silent_wrong_outputs"] == 0, [o.case.name for o in results if o.silent]
    assert counts["lost_files"] == 0, [(o.case.name, o.lost) for o in results if o.lost]


def test_every_case_meets_its_expectation(outcomes):
    results, _ = outcomes
    failed = {o.case.name: o.problems() for o in results if o.problems()}
    assert not failed, "\n".join(f"{name}: {problems}" for name, problems in failed.items())


def test_corpus_runs_in_under_a_minute(outcomes):
    _, seconds = outcomes
    assert seconds < 60, f"the probe corpus took {seconds:.0f} s"
