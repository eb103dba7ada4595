"""Make the pinned peer codes import next to torch 2.13 (no installed file is patched).

Import this module before ``schnetpack`` or ``mace``:

- SchNetPack 2.1.1 does ``from torch.utils.data.dataloader import T_co``; torch
  renamed that private TypeVar ``_T_co``. Defining the old name is enough.
- MACE sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` when it is imported, and e3nn
  unpickles its constants at import time, so ``mace`` must be imported before
  ``e3nn`` (the other order fails to load e3nn's constants).
"""

from __future__ import annotations

import importlib.metadata
import typing

import torch.utils.data.dataloader as _dataloader

if not hasattr(_dataloader, "T_co"):
    _dataloader.T_co = typing.TypeVar("T_co", covariant=True)

try:  # mace before e3nn, see above
    import mace  # noqa: F401
except ImportError:  # a peer that is not installed is reported by versions()
    pass


def versions() -> dict[str, str | None]:
    """Installed versions of the codes the peer benchmark uses (None: not installed)."""
    found = {}
    for name in ("torch", "schnetpack", "mace-torch", "e3nn", "ase", "numpy", "pytorch-lightning"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found
