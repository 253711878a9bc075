"""Fixtures shared by the test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread, then restore the count.

    The models in these tests are tiny, so their time goes to dispatch, not arithmetic: keeping a
    second thread in step only adds synchronisation, which on a busy 2-core machine was measured
    to cost up to ~40x. One thread computes the same values within the tests' tolerances.
    Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
