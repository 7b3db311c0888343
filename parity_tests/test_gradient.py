"""scratch.gradient vs torchref.gradient vs autograd."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.gradient as sg
import torchref.gradient as tg
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


def quartic(x):
    return (x ** 4).sum() / 4 + (x ** 2).sum() + x.sum()


@given(x=S.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4)), 3.0))
def test_numerical_gradient_matches_autograd(x: np.ndarray) -> None:
    before = x.copy()
    ours = sg.numerical_gradient(quartic, x)
    np.testing.assert_array_equal(x, before)            # the caller's array is unchanged
    xt = torch.from_numpy(x).requires_grad_(True)
    quartic(xt).backward()
    assert_close(ours, xt.grad, mode="numerical", msg="central differences vs autograd")
    assert_close(ours, x ** 3 + 2 * x + 1, mode="numerical", msg="vs the exact derivative")
    assert_close(tg.numerical_gradient(quartic, torch.from_numpy(x)), ours)


def test_numerical_gradient_keeps_float32_input_untouched() -> None:
    x = np.array([[1.5, -2.0]], dtype=np.float32)
    g = sg.numerical_gradient(lambda z: (z ** 2).sum(), x)
    assert g.dtype == np.float64 and x.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)


@given(x=st.floats(-3, 3))
def test_numerical_diff(x: float) -> None:
    d = sg.numerical_diff(lambda v: v ** 3, x)
    assert_close(np.float64(d), np.float64(3 * x ** 2), mode="numerical")
    assert tg.numerical_diff(lambda v: v ** 3, x) == d


def test_gradient_descent_reaches_minimum_and_matches_torch() -> None:
    """The course's example f = x0^2 + x1^2 from (-3, 4), lr 0.1, 100 steps."""
    def f(x):
        return (x ** 2).sum()
    x, hist = sg.gradient_descent(f, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
    assert hist.shape == (100, 2) and hist[0].tolist() == [-3.0, 4.0]
    assert np.abs(x).max() < 1e-8
    _xt, hist_t = tg.gradient_descent(f, torch.tensor([-3.0, 4.0]), lr=0.1, step_num=100)
    assert_close(hist_t, hist, mode="numerical", msg="autograd SGD vs numerical-gradient descent")
