"""scratch.losses vs torchref.losses vs torch's F.* losses, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.functions as sf
import scratch.losses as sl
import torchref.losses as tl
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


@given(a=S.logits(), data=st.data())
@example(a=np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0]]), data=None)
@example(a=np.array([3.0, -2.0], dtype=np.float32), data=None)
def test_softmax_cross_entropy(a: np.ndarray, data: st.DataObject | None,
                               device: torch.device) -> None:
    t = data.draw(S.labels_for(a)) if data else np.zeros(a.shape[:-1], dtype=np.int64)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = sl.softmax_cross_entropy(a, t)
        ours_onehot = sl.softmax_cross_entropy(a, S.onehot(t, a.shape[-1], a.dtype))
    assert np.isfinite(ours) and ours.dtype == a.dtype
    assert_close(ours_onehot, ours, msg="one-hot vs integer labels")
    at, tt = torch.from_numpy(a).to(device), torch.from_numpy(t).to(device)
    assert_close(tl.softmax_cross_entropy(at, tt), ours)
    native = F.cross_entropy(at.reshape(-1, a.shape[-1]), tt.reshape(-1))
    assert_close(native, ours, msg="F.cross_entropy vs scratch")


@given(a=S.logits(dtype=np.float64, one_dim=False), data=st.data())
def test_softmax_cross_entropy_gradient(a: np.ndarray, data: st.DataObject,
                                        device: torch.device) -> None:
    """Hand-derived (softmax - t) / N vs autograd of F.cross_entropy."""
    t = data.draw(S.labels_for(a))
    hand = (sf.softmax(a) - S.onehot(t, a.shape[-1], a.dtype)) / a.shape[0]
    at = torch.from_numpy(a).to(device).requires_grad_(True)
    F.cross_entropy(at, torch.from_numpy(t).to(device)).backward()
    assert_close(at.grad, hand, msg="autograd vs hand-derived")


@given(a=S.logits(dtype=np.float64, one_dim=False, max_n=3, max_c=4), data=st.data())
def test_softmax_cross_entropy_gradient_numerical(a: np.ndarray, data: st.DataObject) -> None:
    a = a / max(1.0, np.abs(a).max()) * 5    # unit scale for central differences
    t = data.draw(S.labels_for(a))
    hand = (sf.softmax(a) - S.onehot(t, a.shape[-1], a.dtype)) / a.shape[0]
    assert_close(hand, numerical_gradient(lambda z: sl.softmax_cross_entropy(z, t), a),
                 mode="numerical")


@given(y=S.probabilities(), data=st.data())
@example(y=np.array([[0.0, 1.0], [0.5, 0.5]]), data=None)
def test_cross_entropy_error(y: np.ndarray, data: st.DataObject | None,
                             device: torch.device) -> None:
    t = data.draw(S.labels_for(y)) if data else np.array([0, 1])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ours = sl.cross_entropy_error(y, t)
    assert np.isfinite(ours)
    assert_close(sl.cross_entropy_error(y, S.onehot(t, y.shape[-1], y.dtype)), ours)
    yt, tt = torch.from_numpy(y).to(device), torch.from_numpy(t).to(device)
    assert_close(tl.cross_entropy_error(yt, tt), ours)
    tiny = torch.finfo(yt.dtype).tiny
    native = F.nll_loss(torch.log(yt.clamp_min(tiny)), tt)
    assert_close(native, ours, msg="F.nll_loss(log y) vs scratch")


def test_cross_entropy_error_zero_probability_is_finite() -> None:
    """log(max(y, tiny)): y = 0 gives -log(tiny), not inf (documented convention)."""
    for dtype in S.FLOAT_DTYPES:
        y = np.array([[0.0, 1.0]], dtype=dtype)
        assert sl.cross_entropy_error(y, np.array([0])) == -np.log(np.finfo(dtype).tiny)


@given(y=S.batch_matrix(), data=st.data())
def test_mean_squared_error(y: np.ndarray, data: st.DataObject, device: torch.device) -> None:
    t = data.draw(S.arrays(y.dtype, y.shape))
    ours = sl.mean_squared_error(y, t)
    yt = torch.from_numpy(y).to(device).requires_grad_(True)
    tt = torch.from_numpy(t).to(device)
    assert_close(tl.mean_squared_error(yt, tt), ours)
    native = 0.5 * F.mse_loss(yt, tt, reduction="sum") / y.shape[0]
    assert_close(native, ours, msg="F.mse_loss vs scratch")
    native.backward()
    assert_close(yt.grad, (y - t) / y.shape[0], msg="autograd vs hand-derived (y - t) / N")


@pytest.mark.parametrize("fn", ["cross_entropy_error", "softmax_cross_entropy"])
def test_one_sample_equals_batch_of_one(fn: str) -> None:
    y = np.array([0.2, 0.7, 0.1])
    f = getattr(sl, fn)
    assert f(y, 1) == f(y[None], np.array([1]))
    assert_close(getattr(tl, fn)(torch.from_numpy(y), torch.tensor(1)), f(y, 1))
