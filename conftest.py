"""Settings for every test folder (tests/, plugins/*/tests, examples/*/tests, downstream/tests).

One torch intra-op thread in every test, and in every module- or session-scoped fixture.

Why: float reductions (convolutions, matrix products, sums) split their work by thread, and the
split changes the rounding. A numeric test whose result depends on how many threads torch
happens to get (``OMP_NUM_THREADS``, the machine's core count) passes on one machine and fails
on another (issue 17). Pinning the count here makes every in-process result the same under
``OMP_NUM_THREADS=1``, ``2`` or unset; subprocesses get ``OMP_NUM_THREADS=1`` from the helpers
that start them (``tests/nas_test_helpers.nas`` and each test's own ``env``). One thread is
also the fastest setting for these tiny networks on a shared 2-core machine.

What pinning cannot remove is the processor: another CPU (or ``ATEN_CPU_CAPABILITY``) picks
other vector kernels and rounds differently. Tolerances in numeric tests are therefore set far
above the rounding they observe, and the tests say how far (``scripts/flaky_check.py`` runs the
suite under several thread and instruction-set settings to show it).
"""

from __future__ import annotations

import pytest
import torch

TEST_THREADS = 1


@pytest.fixture(scope="session", autouse=True)
def _pinned_threads_for_fixtures():
    """Pins the count before any module or session fixture runs (they train supernets too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _pinned_threads():
    """Pins it again around each test, so a test that changed it cannot leak into the next one
    (or into the next module's fixtures)."""
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(TEST_THREADS)
