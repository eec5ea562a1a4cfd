import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests run many small ops: one thread is faster on a 2-core machine and keeps timings stable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
