"""One torch thread per test here: these tests train tiny supernets, where a second thread on a
busy 2-core machine costs far more than it gains."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
