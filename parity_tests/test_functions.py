"""scratch.functions vs torchref.functions vs torch's native ops, forward and derivative."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.functions as sf
import torchref.functions as tf
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

# component: (native torch op, its element-wise derivative or None)
ELEMENTWISE = {
    "step_function": (lambda x: torch.heaviside(x, torch.zeros_like(x)), None),
    "sigmoid": (torch.sigmoid, "sigmoid_grad"),
    "relu": (torch.relu, "relu_grad"),
    "identity_function": (lambda x: x.clone(), None),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(x=S.dtypes.flatmap(lambda d: S.arrays(d, st.tuples(st.integers(0, 5),
                                                          st.integers(1, 6)), 1e4)))
@example(x=np.array([[-1e4, -710.0, -88.8, 0.0, 88.8, 710.0, 1e4]]))
@example(x=np.array([[-1e4, -89.0, 0.0, 89.0, 1e4]], dtype=np.float32))
def test_elementwise_forward(name: str, x: np.ndarray, device: torch.device) -> None:
    native, _ = ELEMENTWISE[name]
    # no overflow warning for any finite input:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = getattr(sf, name)(x)
    assert ours.dtype == x.dtype and ours.shape == x.shape
    xt = torch.from_numpy(x).to(device)
    assert_close(getattr(tf, name)(xt), ours, msg=f"torchref.{name} vs scratch")
    assert_close(native(xt), ours, msg=f"torch native vs scratch.{name}")


@pytest.mark.parametrize("name", ["sigmoid", "relu"])
@given(x=S.dtypes.flatmap(lambda d: S.arrays(d, st.tuples(st.integers(1, 4),
                                                          st.integers(1, 5)), 50.0)))
@example(x=np.array([[-1e3, -1.0, 0.0, 1.0, 1e3]]))
def test_elementwise_derivative(name: str, x: np.ndarray, device: torch.device) -> None:
    """Hand-derived derivative vs autograd (torchref.*_grad) on every device."""
    grad_name = ELEMENTWISE[name][1]
    ours = getattr(sf, grad_name)(x)
    assert_close(getattr(tf, grad_name)(torch.from_numpy(x).to(device)), ours,
                 msg=f"autograd vs scratch.{grad_name}")


@pytest.mark.parametrize("name", ["sigmoid", "relu"])
@given(x=S.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4)), 5.0))
def test_elementwise_derivative_numerical(name: str, x: np.ndarray) -> None:
    """Three ways in float64: hand-derived vs autograd vs central differences."""
    if name == "relu":   # keep central differences off the kink at 0
        x = np.where(np.abs(x) < 1e-2, x + np.copysign(0.5, x + 1e-300), x)
    grad_name = ELEMENTWISE[name][1]
    ours = getattr(sf, grad_name)(x)
    numeric = numerical_gradient(lambda z: getattr(sf, name)(z).sum(), x)
    assert_close(ours, numeric, mode="numerical", msg=f"scratch.{grad_name} vs numerical")
    assert_close(getattr(tf, grad_name)(torch.from_numpy(x)), ours)


@given(x=S.logits(), axis=st.sampled_from([-1, 0]))
@example(x=np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]]), axis=-1)
@example(x=np.array([[1.0, 2.0, 3.0], [1001.0, 1002.0, 1003.0]]), axis=-1)  # global-max bug
@example(x=np.array([7.0]), axis=-1)
def test_softmax_and_log_softmax(x: np.ndarray, axis: int, device: torch.device) -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, ls = sf.softmax(x, axis=axis), sf.log_softmax(x, axis=axis)
    assert np.isfinite(ls).all()
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-6 if x.dtype == np.float32
                               else 1e-14)
    xt = torch.from_numpy(x).to(device)
    assert_close(tf.softmax(xt, axis=axis), s)
    assert_close(torch.softmax(xt, dim=axis), s, msg="torch.softmax vs scratch")
    assert_close(tf.log_softmax(xt, axis=axis), ls)
    assert_close(F.log_softmax(xt, dim=axis), ls, msg="F.log_softmax vs scratch")


def test_softmax_rows_are_independent() -> None:
    """Each row of a batch is its own softmax (the global-max version fails this)."""
    x = np.array([[1.0, 2.0, 3.0], [1001.0, 1002.0, 1003.0]])
    s = sf.softmax(x)
    np.testing.assert_array_equal(s[0], s[1])
    np.testing.assert_array_equal(s[0], sf.softmax(x[0]))


@given(x=S.logits(dtype=np.float64, one_dim=False, max_n=3, max_c=4))
def test_log_softmax_gradient_three_ways(x: np.ndarray) -> None:
    """d/dx sum_i w_i log_softmax(x)_i = w - softmax(x) * sum(w), per row."""
    x = x / max(1.0, np.abs(x).max()) * 5    # unit scale for central differences
    w = np.arange(1.0, x.shape[-1] + 1)
    hand = w - sf.softmax(x) * w.sum()
    numeric = numerical_gradient(lambda z: (sf.log_softmax(z) * w).sum(), x)
    xt = torch.from_numpy(x).requires_grad_(True)
    (F.log_softmax(xt, dim=-1) * torch.from_numpy(w)).sum().backward()
    assert_close(xt.grad, hand, msg="autograd vs hand-derived")
    assert_close(hand, numeric, mode="numerical")
