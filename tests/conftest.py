"""Fixtures of the whole test suite."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread for every test. The models are tiny (MD evaluates a 9-atom molecule
    thousands of times, training runs small batches): thread start-up and synchronisation
    cost more than the arithmetic, and on a busy machine two threads per small matrix
    product spend more time waiting for each other than computing (on a busy 2-core
    machine, 100 times more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
