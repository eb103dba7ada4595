"""Watching the model's uncertainty while it drives dynamics or an optimisation.

    watch = UncertaintyWatch(limit=0.5, action="stop")      # eV/Angstrom
    atoms.calc = TriDFTCalculator("model.pt", uncertainty_limit=0.5, on_uncertainty="stop")

After every evaluation the calculator hands its results to the watch. The watched
number is ``forces_uncertainty_max`` (eV/Angstrom): the largest predicted standard
deviation of a force component over the atoms (tridft.uncertainty.llpr), the usual
criterion for "the structure has left what the model knows" in active learning.
"warn" logs the first time it passes the limit and counts the rest (``summary()``);
"stop" raises UncertaintyExceeded, which the command line prints as one line.
"""

from __future__ import annotations

import logging

from tridft.errors import TriDFTError

logger = logging.getLogger(__name__)

WATCHED = "forces_uncertainty_max"
ACTIONS = ("warn", "stop")


class UncertaintyExceeded(TriDFTError):
    """The model's predicted uncertainty passed the limit the user set."""


class UncertaintyWatch:
    """Compares ``results[WATCHED]`` with ``limit`` after every evaluation."""

    def __init__(self, limit: float, action: str = "warn"):
        if not limit > 0:
            raise TriDFTError(f"the uncertainty limit must be > 0 eV/Angstrom, got {limit}")
        if action not in ACTIONS:
            raise TriDFTError(f"on_uncertainty must be one of {', '.join(ACTIONS)}, "
                              f"not '{action}'")
        self.limit = float(limit)
        self.action = action
        self.evaluations = 0
        self.exceeded = 0
        self.largest = 0.0

    def check(self, results: dict) -> None:
        value = float(results[WATCHED])
        self.evaluations += 1
        self.largest = max(self.largest, value)
        if value <= self.limit:
            return
        self.exceeded += 1
        message = (f"the predicted force uncertainty reached {value:.3g} eV/A (limit "
                   f"{self.limit:g}) at evaluation {self.evaluations}: the structure is "
                   f"outside what the model knows")
        if self.action == "stop":
            raise UncertaintyExceeded(message)
        if self.exceeded == 1:
            logger.warning("%s (reported once; see the summary)", message)

    def summary(self) -> str:
        return (f"force uncertainty: largest {self.largest:.3g} eV/A, above {self.limit:g} in "
                f"{self.exceeded} of {self.evaluations} evaluations")
