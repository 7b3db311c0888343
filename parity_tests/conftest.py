"""Hypothesis profiles and the device fixture shared by every parity test.

Profiles (pick one with ``TORCHREF_HYPOTHESIS_PROFILE``, default ``ci``):

* ``ci``: deterministic (``derandomize``), no deadline, 25 examples per test,
  the database off: the same examples on every run and machine.
* ``dev``: random, 100 examples, failures remembered in the local database.
* ``thorough``: random, 1000 examples, for a long run before a release.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TORCHREF_HYPOTHESIS_PROFILE", "ci"))

NO_CUDA = "no CUDA device: torch.cuda.is_available() is False (CPU-only torch or no GPU)"

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda",
                 marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                             reason=NO_CUDA)]),
]


@pytest.fixture(scope="session", params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device present: the CPU always, CUDA when there is one (else a visible skip)."""
    return torch.device(request.param)


@pytest.fixture(scope="session", autouse=True)
def _no_tf32() -> Iterator[None]:
    """float32 comparisons run with TF32 off; tests of the tf32 mode turn it on explicitly."""
    from torchref.tolerance import tf32_enabled
    with tf32_enabled(False):
        yield


@pytest.fixture
def parity(device: torch.device):
    """``torchref.parity.assert_parity`` bound to the device under test: a parity test in one call.

    ``parity(scratch_fn_or_layer, torch_fn_or_module, inputs_strategy, native=..., ...)``
    """
    import functools

    from torchref.parity import assert_parity
    return functools.partial(assert_parity, device=device)


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
