"""Errors that tridft reports to users as one line, without a traceback."""

from __future__ import annotations


class TriDFTError(Exception):
    """Base class of errors that the command line prints as a single line."""


class InputError(TriDFTError):
    """Bad input data, located by file, structure index and field.

    >>> str(InputError("NaN in forces", path="a.xyz", index=3, field="forces"))
    'a.xyz: structure 3: field forces: NaN in forces'
    """

    def __init__(self, message: str, path: str | None = None, index: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = path
        self.index = index
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(str(self.path))
        if self.index is not None:
            parts.append(f"structure {self.index}")
        if self.field is not None:
            parts.append(f"field {self.field}")
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(TriDFTError):
    """A configuration key that is unknown, mistyped or out of range."""


class CheckpointError(TriDFTError):
    """A model or checkpoint file that cannot be loaded safely."""


class MissingExtra(TriDFTError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it.

    An ImportError too, so that code which can do without the package may catch it.
    """
