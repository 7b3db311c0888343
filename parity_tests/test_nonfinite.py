"""Non-finite values where a mask selects: the fixes behind the drawn cases, one test each.

The components table draws +inf/-inf/NaN for every component (``torchref.testing._nonfinite``)
and pins edges per component; these tests name the cases the fixes are about.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scratch.distillation as sd
import scratch.layers as sl
import scratch.optim as so
import torchref.distillation as td
import torchref.layers as tl
import torchref.optim as to
from torchref.tolerance import assert_close

INF, NAN = np.inf, np.nan


def test_relu_layer_selects_like_torch() -> None:
    """-inf -> 0 (not -inf * 0 = NaN); NaN passes, and so does its dout; an infinite dout at
    x <= 0 gives 0."""
    x = np.array([[-INF, INF, NAN, 0.0, -1.0, 2.0]])
    dout = np.array([[INF, -INF, 3.0, NAN, INF, INF]])
    ours = sl.Relu()
    out, dx = ours.forward(x), ours.backward(dout)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_t = tl.Relu()(xt)
    out_t.backward(torch.from_numpy(dout))
    assert_close(out_t, out)
    assert_close(xt.grad, dx)
    np.testing.assert_array_equal(out, [[0, INF, NAN, 0, 0, 2]])
    np.testing.assert_array_equal(dx, [[0, -INF, 3, 0, 0, INF]])


def test_max_pool_backward_routes_an_infinite_dout_without_nan() -> None:
    x = np.array([[[[1.0, 2.0], [3.0, 0.0]]]])
    ours = sl.Pooling(1, 2)
    ours.forward(x)
    dx = ours.backward(np.array([[[[INF], [-INF]]]]))
    xt = torch.from_numpy(x).requires_grad_(True)
    tl.Pooling(1, 2)(xt).backward(torch.tensor([[[[INF], [-INF]]]], dtype=torch.float64))
    assert_close(xt.grad, dx)
    np.testing.assert_array_equal(dx, [[[[0, INF], [-INF, 0]]]])


@pytest.mark.parametrize("layer", ["SoftmaxWithLoss", "distillation hard loss"])
def test_integer_labels_select_their_log_probability(layer: str) -> None:
    """A -inf logit outside the label leaves the cross-entropy finite (torch's nll_loss)."""
    x, labels = np.array([[-INF, 0.0, 1.0], [-INF, -INF, 0.0]]), np.array([1, 2])
    xt, tt = torch.from_numpy(x), torch.from_numpy(labels)
    if layer == "SoftmaxWithLoss":
        ours, theirs = sl.SoftmaxWithLoss().forward(x, labels), tl.SoftmaxWithLoss()(xt, tt)
    else:
        ours = sd.distillation_terms(x, np.zeros_like(x), labels)[1]
        theirs = td.distillation_terms(xt, torch.zeros_like(xt), tt)[1]
    assert np.isfinite(ours)
    assert_close(theirs, ours)


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_zero_is_plain_sgd_with_infinite_gradients(name: str) -> None:
    w, wt = np.zeros(2), torch.zeros(2, dtype=torch.float64, requires_grad=True)
    ours, theirs = so.OPTIMIZERS[name](lr=0.1, momentum=0.0), to.OPTIMIZERS[name](lr=0.1,
                                                                                 momentum=0.0)
    for g in ([INF, 1.0], [1.0, -INF]):
        ours.update({"W": w}, {"W": np.array(g)})
        theirs.update({"W": wt}, {"W": torch.tensor(g, dtype=torch.float64)})
    assert_close(wt, w)
    np.testing.assert_array_equal(w, [-INF, INF])


def test_an_infinite_dout_meets_a_zero_loss_weight_as_in_autograd() -> None:
    """alpha = 0: dout * alpha = inf * 0 = NaN in the soft term, as autograd computes it."""
    s, t, labels = np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]), np.array([0])
    ours = sl.DistillationLoss(2.0, 0.0)
    ours.forward(s, t, labels)
    dx = ours.backward(INF)
    st = torch.from_numpy(s).requires_grad_(True)
    tl.DistillationLoss(2.0, 0.0)(st, torch.from_numpy(t), torch.from_numpy(labels)).backward(
        torch.tensor(INF, dtype=torch.float64))
    assert_close(st.grad, dx)
    assert np.isnan(dx).all()


def test_transformer_block_relu_selects_an_infinite_gradient_like_torch() -> None:
    """The feed-forward relu's backward selects (``threshold_backward``): an infinite
    gradient at an off unit gives 0 in dW1/db1, not ``inf * 0 = NaN``."""
    import scratch.attention as sa
    import torchref.attention as ta
    import torchref.convert as tc
    e = 2
    rng = np.random.default_rng(0)
    params = sa.transformer_block_params(e, 1, seed=rng)
    params["b1"] = np.array([-10.0, 10.0])                   # unit 0 off, unit 1 on
    x = rng.uniform(-1, 1, (1, 3, e))
    dout = np.array([[[INF, 1.0], [0.5, -1.0], [1.0, 0.25]]])
    ours = sa.TransformerBlock({k: v.copy() for k, v in params.items()}, 1, 0.0)
    ours.forward(x, x, x)
    ours.backward(dout)
    theirs = ta.TransformerBlock(tc.tensors_from_numpy(params, "cpu"), 1, 0.0)
    out = theirs(*(torch.from_numpy(x),) * 3)
    out.backward(torch.from_numpy(dout))
    grads = theirs.grads()
    assert grads["b1"][0] == 0                             # torch: the off unit gets 0
    assert_close(ours.db1, grads["b1"].numpy())
    assert_close(ours.dW1, grads["W1"].numpy())


def test_transformer_block_relu_passes_the_gradient_at_nan_like_torch() -> None:
    """At a NaN relu input torch's ``threshold_backward`` (``x <= 0 ? 0 : g``) passes the
    gradient on (as ``relu_grad``): a NaN token reaches db1, not 0."""
    import scratch.attention as sa
    import torchref.attention as ta
    import torchref.convert as tc
    rng = np.random.default_rng(1)
    params = sa.transformer_block_params(2, 1, seed=rng)
    x = rng.uniform(-1, 1, (1, 3, 2))
    x[0, 0, 0] = NAN
    dout = rng.standard_normal((1, 3, 2))
    ours = sa.TransformerBlock({k: v.copy() for k, v in params.items()}, 1, 0.0)
    ours.forward(x, x, x)
    ours.backward(dout)
    theirs = ta.TransformerBlock(tc.tensors_from_numpy(params, "cpu"), 1, 0.0)
    theirs(*(torch.from_numpy(x),) * 3).backward(torch.from_numpy(dout))
    expected = theirs.grads()["b1"].numpy()
    assert np.isnan(expected).all()
    assert_close(ours.db1, expected)
