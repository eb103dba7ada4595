"""One torch thread for the MD tests: they evaluate a 9-atom molecule thousands of times,
where thread start-up and synchronisation cost more than the arithmetic (on a busy
2-core machine, 100 times more)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
