"""The MLP: scratch backprop vs torch autograd vs numerical gradients, and SGD in lockstep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from parity_tests.model_checks import (
    assert_model_parity,
    assert_same_params,
    set_shared_masks,
    steps_in_lockstep,
)
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


def test_init_network_forward() -> None:
    y = sm.forward(sm.init_network(), np.array([1.0, 0.5]))
    np.testing.assert_allclose(y, [0.31682708, 0.69627909], atol=5e-9)  # printed digits
    assert np.array2string(y) == "[0.31682708 0.69627909]"
    assert_close(tm.forward(tm.init_network(), torch.tensor([1.0, 0.5], dtype=torch.float64)), y)


@given(case=S.mlp_case(), activation=st.sampled_from(["relu", "sigmoid"]))
def test_mlp_logits_loss_gradients(case: tuple, activation: str, device: torch.device) -> None:
    sizes, x, t, seed = case
    model = sm.MLP(sizes, activation, seed=seed, dtype=x.dtype)
    tmodel = tm.MLP.from_scratch(model, device=device)
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    assert_model_parity(model, tmodel, x, t, xt, tt)


@given(case=S.mlp_case(dtype=np.float64, max_width=4, max_n=3),
       activation=st.sampled_from(["relu", "sigmoid"]))
def test_mlp_backprop_vs_numerical(case: tuple, activation: str) -> None:
    """Three ways in float64: backprop, autograd, central differences."""
    sizes, x, t, seed = case
    model = sm.MLP(sizes, activation, seed=seed)
    if activation == "relu":   # central differences are wrong across a kink: stay 1e-3 away
        h = x
        for layer in model.layers[:-1]:
            h = layer.forward(h)
            if isinstance(layer, sm.Affine):
                assume(np.abs(h).min() > 1e-3)
    grads, numeric = model.gradient(x, t), model.numerical_gradient(x, t)
    tgrads = tm.MLP.from_scratch(model).gradient(torch.from_numpy(x), torch.from_numpy(t))
    for k in grads:
        assert_close(grads[k], numeric[k], mode="numerical", msg=f"backprop vs numerical, {k}")
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


@given(case=S.mlp_case(max_width=8, max_n=8), steps=st.integers(1, 8), lr=st.floats(1e-3, 0.5))
def test_sgd_steps_in_lockstep(case: tuple, steps: int, lr: float, device: torch.device) -> None:
    """k steps of scratch SGD and of torch.optim.SGD from the same weights agree."""
    sizes, x, t, seed = case
    model = sm.MLP(sizes, seed=seed, dtype=x.dtype)
    tmodel = tm.MLP.from_scratch(model, device=device)
    opt, topt = so.SGD(lr), torch.optim.SGD(tmodel.parameters(), lr=lr)
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    steps_in_lockstep(model, tmodel, opt, topt, (x, t, xt, tt), steps)
    # k steps compound rounding: compare each parameter at the policy of its dtype,
    # with the error growth bounded by the (small) number of steps drawn here.
    assert_same_params(model, tmodel, f"after {steps} SGD steps")


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_conversion_round_trip_is_exact(dtype: type, device: torch.device) -> None:
    model = sm.MLP([7, 5, 3], seed=0, dtype=dtype)
    tmodel = tm.MLP.from_scratch(model, device=device)
    assert tmodel.affines[0].weight.shape == (5, 7)          # nn.Linear layout (out, in)
    back = tmodel.to_scratch()
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)


def test_mlp_init_schemes_and_seed() -> None:
    a, b = sm.MLP([784, 100, 10], seed=3), sm.MLP([784, 100, 10], seed=3)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert abs(a.params["W1"].std() - np.sqrt(2 / 784)) < 0.01 * np.sqrt(2 / 784) * 10
    s = sm.MLP([784, 100, 10], activation="sigmoid", seed=3)
    assert abs(s.params["W1"].std() - np.sqrt(1 / 784)) < 0.1 * np.sqrt(1 / 784)
    t = tm.MLP([784, 100, 10], seed=3)
    assert abs(float(t.params["W1"].detach().std()) - np.sqrt(2 / 784)) < 0.1 * np.sqrt(2 / 784)


# --- weight decay, dropout and batch normalization in the MLP ------------------------------

def build(case: tuple) -> tuple:
    """(model, x, t, masks) from ``S.regularised_mlp_case``."""
    sizes, x, t, seed, options, masks = case
    return sm.MLP(sizes, seed=seed, dtype=x.dtype, **options), x, t, masks


@given(case=S.regularised_mlp_case())
def test_regularised_mlp_parity(case: tuple, device: torch.device) -> None:
    """Train-mode loss and every gradient (W with lambda W, b, gamma, beta), the running
    statistics it leaves, and test-mode logits: scratch backprop vs the torch mirror."""
    model, x, t, masks = build(case)
    tmodel = tm.MLP.from_scratch(model, device=device)
    set_shared_masks(model, tmodel, masks, device)
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    assert_model_parity(model, tmodel, x, t, xt, tt)


@given(case=S.regularised_mlp_case(np.float64, max_width=4, max_n=3))
def test_regularised_mlp_backprop_vs_numerical(case: tuple) -> None:
    """Three ways in float64 with the options on: backprop, autograd, central differences."""
    model, x, t, masks = build(case)
    tmodel = tm.MLP.from_scratch(model)
    set_shared_masks(model, tmodel, masks, torch.device("cpu"))
    h = x
    for layer in model.layers:
        if isinstance(layer, sm.Relu):      # stay 1e-3 away from the kink, as above
            assume(np.abs(h).min() > 1e-3)
        if isinstance(layer, sm.BatchNormalization):
            # batch norm is scale-invariant: a weight moved by h moves the output by about
            # h |x| / std(input), so central differences need std(input) well above h |x|
            # (their truncation error grows as (h |x| / std)^2).
            assume(h.std(axis=0).min() > 0.1)
            h = layer.forward(h, True)
        elif isinstance(layer, sm.Dropout):
            h = layer.forward(h, True)
        else:
            h = layer.forward(h)
    grads, numeric = model.gradient(x, t), model.numerical_gradient(x, t)
    tgrads = tmodel.gradient(torch.from_numpy(x), torch.from_numpy(t))
    for k in grads:
        assert_close(grads[k], numeric[k], mode="numerical", msg=f"backprop vs numerical, {k}")
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


def test_weight_decay_term_and_options_round_trip() -> None:
    model = sm.MLP([3, 4, 2], seed=1, weight_decay_lambda=0.5, use_batchnorm=True,
                   use_dropout=True, dropout_ratio=0.3)
    x, t = np.ones((2, 3)), np.array([0, 1])
    plain = sm.MLP([3, 4, 2], seed=1, use_batchnorm=True, use_dropout=True, dropout_ratio=0.3)
    expected = 0.25 * (np.sum(model.params["W1"] ** 2) + np.sum(model.params["W2"] ** 2))
    assert_close(model.loss(x, t) - plain.loss(x, t), np.float64(expected), msg="L2 term")
    back = tm.MLP.from_scratch(model).to_scratch()
    assert (back.weight_decay_lambda, back.use_dropout, back.dropout_ratio,
            back.use_batchnorm) == (0.5, True, 0.3, True)
    assert set(back.params) == {"W1", "b1", "gamma1", "beta1", "W2", "b2"}
    for cls in (sm.MLP, tm.MLP):
        with pytest.raises(ValueError, match="weight_decay_lambda: expected a non-negative"):
            cls([3, 2], weight_decay_lambda=-1.0)
        with pytest.raises(ValueError, match=r"dropout_ratio: expected a number in \[0, 1\)"):
            cls([3, 2], dropout_ratio=1.0)
