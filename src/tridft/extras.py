"""Optional dependencies (the extras of pyproject.toml), asked for where they are needed.

The model, data and training code import none of them. A feature that needs one
calls :func:`require` (or :func:`require_matplotlib`) first, so that a missing
package is one line that says what to install, not a traceback:

>>> require("math", extra="none", purpose="arithmetic")  # installed: nothing happens
>>> require("no_such_module_xyz", extra="plot", purpose="plots")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tridft.errors.MissingExtra: no_such_module_xyz is needed for plots: pip install 'tridft[plot]'...
"""

from __future__ import annotations

import importlib

from tridft.errors import MissingExtra


def require(module: str, extra: str, purpose: str) -> None:
    """Raise MissingExtra when ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{module} is needed for {purpose}: pip install 'tridft[{extra}]' "
                           f"(or pip install {module})") from None


def require_matplotlib(purpose: str = "plots") -> None:
    """Raise MissingExtra unless matplotlib (the ``plot`` extra) is installed."""
    require("matplotlib", extra="plot", purpose=purpose)
