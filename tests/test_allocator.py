"""tridft.allocator: glibc keeps freed tensor memory, unless the user says otherwise."""

import ctypes.util
import sys

import pytest
import torch

from tridft import allocator


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    return monkeypatch


def test_switched_off_by_the_environment(fresh):
    fresh.setenv("TRIDFT_KEEP_FREED_MEMORY", "0")
    assert allocator.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                    reason="glibc only")
def test_applied_once_on_glibc(fresh):
    fresh.delenv("TRIDFT_KEEP_FREED_MEMORY", raising=False)
    first = allocator.keep_freed_memory()
    assert first is True
    # A second call is a no-op that reports the same, and tensors still work as usual.
    assert allocator.keep_freed_memory() is first
    big = torch.ones(1 << 20)  # 4 MiB: above glibc's default mmap threshold
    del big
    assert torch.ones(1 << 20).sum().item() == float(1 << 20)
