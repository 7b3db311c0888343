"""scratch.layers (hand-written backward) vs torchref.layers (autograd)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.layers as sl
import torchref.layers as tl
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


@given(dtype=S.dtypes, data=st.data(), n=st.integers(1, 6), d=st.integers(1, 7),
       m=st.integers(1, 5), image=st.booleans())
def test_affine(dtype: type, data: st.DataObject, n: int, d: int, m: int, image: bool,
                device: torch.device) -> None:
    """out = xW + b; dx = dout W^T, dW = x^T dout, db = sum dout; x (N, D) or (N, 1, 1, D)."""
    W, b = data.draw(S.arrays(dtype, (d, m))), data.draw(S.arrays(dtype, (m,)))
    x = data.draw(S.arrays(dtype, (n, 1, 1, d) if image else (n, d)))
    dout = data.draw(S.arrays(dtype, (n, m)))
    ours = sl.Affine(W, b)
    out = ours.forward(x)
    dx = ours.backward(dout)
    assert dx.shape == x.shape
    theirs = tl.Affine(torch.from_numpy(W).to(device), torch.from_numpy(b).to(device))
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    out_t = theirs(xt)
    out_t.backward(torch.from_numpy(dout).to(device))
    assert_close(out_t, out, msg="forward")
    assert_close(xt.grad, dx, msg="dx")
    assert_close(theirs.dW, ours.dW, msg="dW")
    assert_close(theirs.db, ours.db, msg="db")


@given(x=S.dtypes.flatmap(lambda d: S.arrays(d, st.tuples(st.integers(1, 4),
                                                          st.integers(1, 5)))),
       kind=st.sampled_from(["Relu", "Sigmoid"]), data=st.data())
def test_activation_layers(x: np.ndarray, kind: str, data: st.DataObject,
                           device: torch.device) -> None:
    dout = data.draw(S.arrays(x.dtype, x.shape))
    dout_before = dout.copy()
    layer = getattr(sl, kind)()
    out, dx = layer.forward(x), layer.backward(dout)
    np.testing.assert_array_equal(dout, dout_before)      # backward never mutates dout
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    out_t = getattr(tl, kind)()(xt)
    out_t.backward(torch.from_numpy(dout).to(device))
    assert_close(out_t, out, msg=f"{kind} forward")
    assert_close(xt.grad, dx, msg=f"{kind} backward")


@given(a=S.logits(one_dim=False), data=st.data(), onehot=st.booleans())
def test_softmax_with_loss(a: np.ndarray, data: st.DataObject, onehot: bool,
                           device: torch.device) -> None:
    t = data.draw(S.labels_for(a))
    target = S.onehot(t, a.shape[-1], a.dtype) if onehot else t
    layer = sl.SoftmaxWithLoss()
    loss = layer.forward(a, target)
    dx = layer.backward()
    at = torch.from_numpy(a).to(device).requires_grad_(True)
    loss_t = tl.SoftmaxWithLoss()(at, torch.from_numpy(target).to(device))
    loss_t.backward()
    assert_close(loss_t, loss, msg="loss")
    assert_close(at.grad, dx, msg="dx = (softmax - t) / N")


def test_affine_without_input_grad_skips_only_dx() -> None:
    """input_grad=False (a network's first layer): same dW and db, no dx."""
    rng = np.random.default_rng(0)
    W, b, x, dout = rng.random((3, 2)), rng.random(2), rng.random((4, 3)), rng.random((4, 2))
    full, first = sl.Affine(W, b), sl.Affine(W, b, input_grad=False)
    full.forward(x)
    first.forward(x)
    assert full.backward(dout) is not None and first.backward(dout) is None
    np.testing.assert_array_equal(first.dW, full.dW)
    np.testing.assert_array_equal(first.db, full.db)
