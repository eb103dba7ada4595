"""Torch devices named in options, checked before any work: one line instead of a traceback.

>>> check_device("cpu", "--device")
device(type='cpu')
"""

from __future__ import annotations

import torch

from tridft.errors import ConfigError


def check_device(name: str | torch.device, option: str = "device") -> torch.device:
    """The torch.device ``name``; ConfigError naming ``option`` when this machine has none."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{option}: '{name}' is not a torch device "
                          f"(cpu, cuda, cuda:0, ...)") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else "sees no GPU"
            raise ConfigError(f"{option}: {name}: this PyTorch ({torch.__version__}) is "
                              f"{build}; use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{option}: {name}: there are only {count} GPU(s) "
                              f"(cuda:0..cuda:{count - 1})")
        return device
    if device.type == "mps" and getattr(torch.backends, "mps", None) is not None \
            and torch.backends.mps.is_available():
        return device
    raise ConfigError(f"{option}: {name}: not available on this machine; use cpu")
