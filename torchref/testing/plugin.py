"""The pytest plugin of ``torchref.testing`` (registered through the ``pytest11`` entry point).

Installed with torchref, pytest loads it in every project: it gives

* ``device``: every device present, the CPU always and CUDA when there is one
  (else a visible skip naming the reason);
* ``parity``: ``torchref.testing.assert_parity`` bound to that device, with
  TF32 off (float32 is compared in the float32 mode of the policy);
* the hypothesis profiles ``ci`` (deterministic: derandomized, 25 examples, no
  deadline, no database), ``dev`` (random, 100 examples, failures remembered)
  and ``thorough`` (1000 examples), picked by ``--torchref-profile NAME``, else
  the environment variable ``TORCHREF_HYPOTHESIS_PROFILE``, else the ini option
  ``torchref_profile`` (``[tool.pytest.ini_options]``).  With none of them the
  active hypothesis profile is left alone.

It imports torch and hypothesis only when a test asks for them, so pytest runs
of other projects pay nothing for it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

PROFILES = ("ci", "dev", "thorough")
ENV = "TORCHREF_HYPOTHESIS_PROFILE"
NO_CUDA = "no CUDA device: torch.cuda.is_available() is False (CPU-only torch or no GPU)"
NEEDS_TESTING = "torchref.testing needs hypothesis: pip install 'torchref[testing]'"


def register_profiles() -> None:
    """Register the ci/dev/thorough hypothesis profiles (without loading one)."""
    from hypothesis import HealthCheck, settings
    settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None,
                              database=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
    settings.register_profile("thorough", max_examples=1000, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("torchref", "torchref parity harness")
    group.addoption("--torchref-profile", choices=PROFILES, default=None,
                    help=f"hypothesis profile for parity tests (else ${ENV}, else the ini "
                         f"option torchref_profile): ci = deterministic, 25 examples; dev = "
                         f"random, 100; thorough = 1000")
    parser.addini("torchref_profile", f"default hypothesis profile, one of {PROFILES}",
                  default="")


def selected_profile(config: pytest.Config) -> str | None:
    """The profile asked for by option, environment or ini file (None: none asked for)."""
    for source, value in (("--torchref-profile", config.getoption("torchref_profile")),
                          (ENV, os.environ.get(ENV)),
                          ("torchref_profile", config.getini("torchref_profile"))):
        if value:
            if value not in PROFILES:
                raise pytest.UsageError(f"{source}: expected one of {PROFILES}, got {value!r}")
            return value
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cuda: needs a CUDA device (skipped with a reason when none is present)")
    profile = selected_profile(config)
    try:
        register_profiles()
    except ImportError:
        if profile:
            raise pytest.UsageError(f"--torchref-profile {profile}: {NEEDS_TESTING}") from None
        return
    if profile:
        from hypothesis import settings
        settings.load_profile(profile)


def pytest_report_header(config: pytest.Config) -> str | None:
    profile = selected_profile(config)
    return f"torchref: hypothesis profile {profile}" if profile else None


@pytest.fixture(scope="session", params=[
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.cuda),
])
def device(request: pytest.FixtureRequest) -> Any:
    """Every device present: the CPU always, CUDA when there is one (else a visible skip)."""
    import torch
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    return torch.device(request.param)


@pytest.fixture
def parity(device: Any) -> Iterator[Callable[..., Any]]:
    """``torchref.testing.assert_parity`` bound to the device under test, TF32 off:
    ``parity(scratch_fn_or_layer, torch_fn_or_module, inputs, native=..., backward=...)``."""
    try:
        from torchref.parity import assert_parity
    except ImportError as exc:
        raise ImportError(NEEDS_TESTING) from exc
    from torchref.tolerance import tf32_enabled
    with tf32_enabled(False):
        yield functools.partial(assert_parity, device=device)
