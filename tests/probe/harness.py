"""Running a probe case through the command line in-process, and judging what it did.

A case is one ``tridft ...`` command with an expectation:

    error  it stops with exit code != 0 and one line 'tridft CMD: error: ...' (argparse's
           usage line may come before it), no traceback
    warn   it succeeds (exit 0) and says what is doubtful: a logged warning
    flag   either of the two: an error or a warning, never silence
    ok     it succeeds

and files that must come out of it unchanged (``protect``). Judged per case:
traceback (an exception escaped, or a traceback was printed), silent (an error, warning
or flag case that exited 0 without a word), lost (a protected file changed or vanished),
wrong (any other broken expectation, including the case's own ``check``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tridft.cli.main import main

EXPECTATIONS = ("error", "warn", "flag", "ok")


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str
    area: str = "data"  # data, config, model, filesystem, concurrency, extrapolation
    protect: list[Path] = field(default_factory=list)
    contains: str | None = None  # expected in the error or warning text (case-insensitive)
    setup: Callable[[], None] | None = None
    cleanup: Callable[[], None] | None = None
    check: Callable[[], str | None] | None = None  # returns what is wrong, or None
    cwd: Path | None = None

    def __post_init__(self):
        assert self.expect in EXPECTATIONS, self.expect


@dataclass
class Outcome:
    case: Case
    code: int | None
    stdout: str
    stderr: str
    warnings: list[str]
    traceback: str = ""
    lost: list[str] = field(default_factory=list)
    wrong: str = ""

    @property
    def one_line_error(self) -> bool:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        if not self.code or self.traceback or not lines:
            return False
        errors = [line for line in lines if ": error: " in line]
        others = [line for line in lines if ": error: " not in line
                  and not line.startswith(("usage:", "       ", "tridft: error"))]
        return len(errors) == 1 and lines[-1] == errors[0] and not others

    @property
    def warned(self) -> bool:
        return bool(self.warnings) or "warning" in (self.stdout + self.stderr).lower()

    @property
    def silent(self) -> bool:
        return self.case.expect in ("error", "warn", "flag") and self.code == 0 \
            and not self.warned

    def problems(self) -> list[str]:
        found = []
        expect = self.case.expect
        if self.traceback:
            found.append("traceback: " + self.traceback.strip().splitlines()[-1])
        elif expect == "error" and not self.one_line_error:
            found.append(f"expected a one-line error, got exit {self.code}: {self.stderr!r}")
        elif expect == "warn" and (self.code != 0 or not self.warned):
            found.append(f"expected success with a warning, got exit {self.code}, "
                         f"warnings {self.warnings}, stderr {self.stderr!r}")
        elif expect == "flag" and not (self.one_line_error or (self.code == 0 and self.warned)):
            found.append(f"expected an error or a warning, got exit {self.code}: "
                         f"{self.stderr!r} {self.warnings}")
        elif expect == "ok" and self.code != 0:
            found.append(f"expected success, got exit {self.code}: {self.stderr!r}")
        if self.case.contains and not self.traceback:
            text = (self.stderr + " ".join(self.warnings)).lower()
            if self.case.contains.lower() not in text:
                found.append(f"expected '{self.case.contains}' in {text!r}")
        if self.lost:
            found.append(f"lost files: {self.lost}")
        if self.wrong:
            found.append(self.wrong)
        return found


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def run_case(case: Case) -> Outcome:
    before = {path: digest(path) for path in case.protect}
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    out, err = io.StringIO(), io.StringIO()
    code, caught = None, ""
    previous_cwd = os.getcwd()
    try:
        if case.setup:
            case.setup()
        if case.cwd:
            os.chdir(case.cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(case.argv))
            except SystemExit as stop:  # argparse
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the probe counts
                caught = traceback.format_exc()
    finally:
        os.chdir(previous_cwd)
        root.removeHandler(collect)
        if case.cleanup:
            case.cleanup()
    stderr = err.getvalue()
    if "Traceback (most recent call last)" in stderr:
        caught = caught or stderr
    outcome = Outcome(case, code, out.getvalue(), stderr, collect.messages, caught)
    outcome.lost = [str(p) for p, d in before.items() if d is not None and digest(p) != d]
    if case.check is not None and not caught:
        outcome.wrong = case.check() or ""
    return outcome


def summarise(outcomes: list[Outcome]) -> dict[str, int]:
    return {
        "cases": len(outcomes),
        "one_line_errors": sum(o.one_line_error for o in outcomes),
        "warnings": sum(o.code == 0 and o.warned for o in outcomes),
        "tracebacks": sum(bool(o.traceback) for o in outcomes),
        "silent_wrong_outputs": sum(o.silent for o in outcomes),
        "lost_files": sum(len(o.lost) for o in outcomes),
        "failed_expectations": sum(bool(o.problems()) for o in outcomes),
    }
