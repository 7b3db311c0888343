"""What is specific to this project's suite; the rest comes from the torchref pytest plugin.

The ``device`` and ``parity`` fixtures and the ci/dev/thorough hypothesis profiles
come from ``torchref.testing.plugin``, which pytest loads through the ``pytest11``
entry point exactly as in a user's project (the ``ci`` profile is this project's
default through ``torchref_profile`` in pyproject.toml; ``--torchref-profile`` or
``TORCHREF_HYPOTHESIS_PROFILE`` picks another).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _no_tf32() -> Iterator[None]:
    """float32 comparisons run with TF32 off; tests of the tf32 mode turn it on explicitly."""
    from torchref.tolerance import tf32_enabled
    with tf32_enabled(False):
        yield


@pytest.fixture(scope="session", autouse=True)
def _suite_at_one_thread() -> Iterator[None]:
    """The whole suite at one thread: torch, NumPy's BLAS (threadpoolctl) and, through
    OMP_NUM_THREADS, any subprocess.  On a busy 2-core machine extra threads only contend."""
    from torchref.device import set_threads
    old_torch, old_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    limiter = set_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    if limiter is not None:
        limiter.restore_original_limits()
    torch.set_num_threads(old_torch)
    if old_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old_env


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch intra-op thread for tests of tiny models (on a busy 2-core machine extra
    threads only contend: ~10x slower); the previous count is restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
