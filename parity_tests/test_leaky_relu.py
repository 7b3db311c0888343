"""LeakyRelu, the worked example: scratch vs torch in a few lines, plus gradcheck.

The parity calls below are the whole test a new component needs; the table
entry in torchref/components.py puts it in the report as well.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import scratch.leaky_relu as slr
import torchref.leaky_relu as tlr
from scratch.gradient import gradcheck
from torchref.testing import strategies as S


def test_leaky_relu_layer(parity) -> None:
    parity(slr.LeakyRelu, tlr.LeakyRelu, S.leaky_relu_case,
           native=lambda slope, x: F.leaky_relu(x, slope))


def test_leaky_relu_function(parity) -> None:
    parity(slr.leaky_relu, tlr.leaky_relu, S.leaky_relu_function_case,
           native=F.leaky_relu,
           backward=lambda dout, x, negative_slope: dout * slr.leaky_relu_grad(x, negative_slope))


@given(x=S.smooth_batch(), fast=st.booleans(), seed=S.seeds)
def test_leaky_relu_backward_vs_central_differences(x: np.ndarray, fast: bool, seed: int) -> None:
    """The hand-derived backward against float64 central differences, away from the kink."""
    x = np.where(np.abs(x) < 1e-3, x + np.copysign(0.5, x + 1e-300), x)  # |x| >= 1e-3 > eps
    gradcheck(slr.LeakyRelu(0.1), x, fast=fast, seed=seed).raise_if_failed()


def test_kink_takes_the_negative_slope_like_torch() -> None:
    assert slr.leaky_relu_grad(np.array([0.0]), 0.2).tolist() == [0.2]


@pytest.mark.parametrize("module", [slr, tlr])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.1", None])
def test_negative_slope_must_be_a_finite_number(module, bad) -> None:
    with pytest.raises(ValueError, match="negative_slope: expected a finite number"):
        module.LeakyRelu(bad)
    x = np.zeros(2) if module is slr else torch.zeros(2)
    with pytest.raises(ValueError, match="negative_slope: expected a finite number"):
        module.leaky_relu(x, bad)
