import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tests use tiny models: on a busy machine two threads per small matrix
    product spend more time waiting for each other than computing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
