"""Fixtures shared across the test suite."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread: on a shared 2-core machine its thread pool oversubscribes and runs far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
