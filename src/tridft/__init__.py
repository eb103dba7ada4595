"""tridft: energies, forces and polarizabilities from one equivariant model.

The public face::

    from tridft import read_structures, build_model, load_model, TriDFTCalculator
"""

from __future__ import annotations

__version__ = "0.1.0"

_PUBLIC = {
    "read_structures": "tridft.data.io",
    "build_model": "tridft.model.model",
    "load_model": "tridft.model.persistence",
    "save_model": "tridft.model.persistence",
    "ModelConfig": "tridft.model.config",
    "TriDFTCalculator": "tridft.md.calculator",
}


def __getattr__(name: str):
    # Lazy imports keep `import tridft` (and the CLI start-up) fast.
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'tridft' has no attribute {name!r}")


__all__ = sorted(_PUBLIC)
