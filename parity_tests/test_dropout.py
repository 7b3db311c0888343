"""scratch.dropout vs torchref.dropout vs F.dropout, with a shared mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.layers as sl
import torchref.layers as tl
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

ALL_KEPT = (np.ones((2, 3)), np.ones((2, 3), dtype=bool), 0.0, np.ones((2, 3)))
ALL_DROPPED = (np.ones((2, 3)), np.zeros((2, 3), dtype=bool), 0.9, np.ones((2, 3)))


@given(case=S.dropout_case(), inverted=st.booleans())
@example(case=ALL_KEPT, inverted=False)
@example(case=ALL_DROPPED, inverted=True)
def test_dropout_shared_mask(case: tuple, inverted: bool, device: torch.device) -> None:
    """Train: out = x * mask (/ (1 - ratio) if inverted), dx = dout * the same; eval: scaled x."""
    x, mask, ratio, dout = case
    dout_before = dout.copy()
    ours = sl.Dropout(ratio, inverted=inverted)
    ours.fixed_mask = mask
    theirs = tl.Dropout(ratio, inverted=inverted)
    theirs.fixed_mask = torch.from_numpy(mask).to(device)
    for train in (True, False):
        out, dx = ours.forward(x, train_flg=train), ours.backward(dout)
        np.testing.assert_array_equal(dout, dout_before)      # backward never mutates dout
        theirs.train(train)
        xt = torch.from_numpy(x).to(device).requires_grad_(True)
        out_t = theirs(xt)
        out_t.backward(torch.from_numpy(dout).to(device))
        assert_close(out_t, out, msg=f"forward, train={train}")
        assert_close(xt.grad, dx, msg=f"backward, train={train}")


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_dropout_vs_native_F_dropout(ratio: float, dtype: type, device: torch.device) -> None:
    """With torch's own mask, inverted dropout is F.dropout; the course's is it times (1 - p)."""
    x = np.random.default_rng(0).standard_normal((6, 7)).astype(dtype)
    xt = torch.from_numpy(x).to(device)
    torch.manual_seed(1234)
    mask = F.dropout(torch.ones_like(xt), ratio, training=True) != 0   # torch's keep-mask
    torch.manual_seed(1234)                                            # the same draw again
    xg = xt.clone().requires_grad_(True)
    native = F.dropout(xg, ratio, training=True)
    native.backward(torch.ones_like(native))
    inverted, course = sl.Dropout(ratio, inverted=True), sl.Dropout(ratio)
    inverted.fixed_mask = course.fixed_mask = mask.cpu().numpy()
    assert_close(native, inverted.forward(x), msg="F.dropout = inverted dropout")
    assert_close(xg.grad, inverted.backward(np.ones_like(x)), msg="F.dropout backward")
    keep = dtype(1 - ratio)
    assert_close(native * keep, course.forward(x), msg="course = F.dropout * (1 - p)")
    assert_close(F.dropout(xt, ratio, training=False) * keep, course.forward(x, train_flg=False),
                 msg="eval: course = x * (1 - p), F.dropout = x")


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.75])
def test_dropout_drops_the_ratio(ratio: float) -> None:
    """Both sides' own random masks drop about ``ratio`` of 40,000 units (5 sigma)."""
    x = np.ones((200, 200))
    bound = 5 * np.sqrt(ratio * (1 - ratio) / x.size)
    ours = sl.Dropout(ratio, seed=0)
    ours.forward(x)
    assert abs(1 - ours.mask.mean() - ratio) < bound
    torch.manual_seed(0)
    out = tl.Dropout(ratio)(torch.from_numpy(x))
    assert abs(float((out == 0).double().mean()) - ratio) < bound
    # the course's convention: kept units pass unchanged, the eval output is the mean.
    assert set(np.unique(out.numpy())) <= {0.0, 1.0}
    assert abs(float(out.mean()) - float(tl.Dropout(ratio).eval()(torch.from_numpy(x)).mean())
               ) < bound


def test_dropout_errors() -> None:
    for cls in (sl.Dropout, tl.Dropout):
        with pytest.raises(ValueError, match=r"ratio: expected a number in \[0, 1\), got 1.0"):
            cls(1.0)
    layer = sl.Dropout(0.5)
    layer.fixed_mask = np.ones((2, 2), dtype=bool)
    with pytest.raises(ValueError, match=r"fixed_mask: expected shape \(3, 2\) to match x"):
        layer.forward(np.ones((3, 2)))
    tlayer = tl.Dropout(0.5)
    tlayer.fixed_mask = torch.ones(2, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"fixed_mask: expected shape \(3, 2\) to match x"):
        tlayer(torch.ones(3, 2))
