"""SimpleConvNet: scratch backprop vs torch autograd vs numerical gradients, SGD in lockstep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from parity_tests.model_checks import (
    assert_model_parity,
    assert_running_stats_close,
    assert_same_params,
    set_shared_masks,
    steps_in_lockstep,
)
from scratch.batchnorm import running_stats_kept
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

MARGIN = 1e-3   # 10x the finite-difference step h = 1e-4


@given(case=S.convnet_case())
def test_convnet_logits_loss_gradients(case: dict, device: torch.device) -> None:
    model = sm.SimpleConvNet(**case["kwargs"], seed=case["seed"], dtype=case["x"].dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    x, t = case["x"], case["t"]
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    assert_model_parity(model, tmodel, x, t, xt, tt)


def train_outputs(model: sm.SimpleConvNet, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output in training mode (the running statistics left as they were)."""
    out = {}
    with running_stats_kept(model.layers_of(sm.BatchNormalization)):
        for name, layer in model.layers.items():
            if isinstance(layer, (sm.Dropout, sm.BatchNormalization)):
                x = layer.forward(x, True)
            else:
                x = layer.forward(x)
            out[name] = x
    return out


def assume_bn_off_kink(model: sm.SimpleConvNet, x: np.ndarray) -> dict[str, np.ndarray]:
    """With batch norm, keep its outputs (the hidden relu's inputs) off the kink (``assume``).

    A normalised value is ``(z - mean) / std``: when a hidden unit is equal on
    every image, or one image's value is the batch mean, it is 0 up to rounding,
    which is amplified by 1 / std (up to 1e3) and differs between the sides, so
    the relu after it can go either way.  We ask for a margin of 1e-3.
    """
    out = train_outputs(model, x)
    if model.use_batchnorm:
        assume(np.abs(out["BatchNorm1"]).min() > MARGIN)
    return out


def assume_smooth(model: sm.SimpleConvNet, x: np.ndarray) -> None:
    """Keep the finite differences off the loss's kinks (documented ``assume``).

    Central differences are wrong where the loss is not differentiable: a relu
    input within h of 0, or a max-pool window whose two largest (positive)
    values are within h of each other (the winner could swap).  A perturbation
    of one weight by h moves these values by at most ~h here (|x| <= 1, O(1)
    weights), so we ask for a margin of 10 h.  Windows whose max is 0 (all relu
    outputs 0) pass no gradient either way.  With batch norm the hidden relu's
    input is the normalised value (``assume_bn_off_kink``), and batch norm is
    scale-invariant: a weight moved by h moves its output by about h |p| / std,
    so the truncation error of central differences grows as (h |p| / std)^2 and
    each hidden unit needs a spread over the batch (std > 0.1, as for the MLP).
    """
    out = assume_bn_off_kink(model, x)
    assume(np.abs(out["Conv1"]).min() > MARGIN)
    win, _ = model.layers["Pool1"].taps(out["Relu1"])          # (N, C, 2, 2, PH, PW)
    taps = np.sort(win.reshape(*win.shape[:2], 4, -1), axis=2)
    top, second = taps[:, :, -1], taps[:, :, -2]
    assume(np.all((top == 0) | (top - second > MARGIN)))
    z2 = out["Affine1"]
    if model.use_batchnorm:
        assume(z2.std(axis=0).min() > 0.1)
    else:
        assume(np.abs(z2).min() > MARGIN)


@given(case=S.convnet_case(dtype=np.float64, max_n=2, unique=True))
def test_convnet_backprop_vs_numerical_vs_autograd(case: dict) -> None:
    """Three ways in float64: backprop, autograd, central differences."""
    model = sm.SimpleConvNet(**case["kwargs"], seed=case["seed"])
    x, t = case["x"], case["t"]
    assume_smooth(model, x)
    grads, numeric = model.gradient(x, t), model.numerical_gradient(x, t)
    tgrads = tm.SimpleConvNet.from_scratch(model).gradient(torch.from_numpy(x),
                                                          torch.from_numpy(t))
    for k in grads:
        assert_close(grads[k], numeric[k], mode="numerical", msg=f"backprop vs numerical, {k}")
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


@given(case=S.convnet_case(), steps=st.integers(1, 5), lr=st.floats(1e-3, 0.3))
def test_convnet_sgd_steps_in_lockstep(case: dict, steps: int, lr: float,
                                       device: torch.device) -> None:
    """k steps of scratch SGD and of torch.optim.SGD from the same weights agree."""
    model = sm.SimpleConvNet(**case["kwargs"], seed=case["seed"], dtype=case["x"].dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    opt, topt = so.SGD(lr), torch.optim.SGD(tmodel.parameters(), lr=lr)
    x, t = case["x"], case["t"]
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    steps_in_lockstep(model, tmodel, opt, topt, (x, t, xt, tt), steps)
    assert_same_params(model, tmodel, f"after {steps} SGD steps")
    assert model.accuracy(x, t) == tmodel.accuracy(xt, tt)


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_convnet_conversion_round_trip_is_exact(dtype: type, device: torch.device) -> None:
    model = sm.SimpleConvNet((1, 8, 8), {"filter_num": 4, "filter_size": 3, "pad": 1},
                             hidden_size=6, seed=0, dtype=dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    assert tmodel.layers.Affine1.weight.shape == (6, 4 * 4 * 4)   # nn.Linear layout
    back = tmodel.to_scratch()
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)


def test_convnet_course_shapes_and_init() -> None:
    """The course's defaults: 30 5x5 filters on 1x28x28, pooled to 30x12x12 = 4320 features."""
    model = sm.SimpleConvNet(seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert abs(model.params["W2"].std() - 0.01) < 0.001            # weight_init_std=0.01
    he = sm.SimpleConvNet(seed=0, weight_init_std="he")
    assert abs(he.params["W1"].std() - np.sqrt(2 / 25)) < 0.2 * np.sqrt(2 / 25)   # fan_in 25
    assert abs(he.params["W2"].std() - np.sqrt(2 / 4320)) < 0.02 * np.sqrt(2 / 4320)
    t = tm.SimpleConvNet(seed=0, weight_init_std="xavier")
    assert abs(float(t.params["W2"].detach().std()) - np.sqrt(1 / 4320)) < 0.02 * np.sqrt(
        1 / 4320)
    y = model.predict(np.zeros((2, 1, 28, 28)))
    assert y.shape == (2, 10)


def test_convnet_errors_same_on_both_sides() -> None:
    for cls in (sm.SimpleConvNet, tm.SimpleConvNet):
        with pytest.raises(ValueError, match=r"input_dim: \(1, 3, 3\) does not fit"):
            cls(input_dim=(1, 3, 3))
        with pytest.raises(ValueError, match=r"conv_param: unknown keys \['size'\]"):
            cls(conv_param={"size": 3})
        with pytest.raises(ValueError, match="input_dim: expected"):
            cls(input_dim=(28, 28))
        with pytest.raises(ValueError, match="weight_init_std: expected"):
            cls(input_dim=(1, 8, 8), conv_param={"filter_size": 3}, weight_init_std="lecun")


# --- weight decay, dropout and batch normalization in SimpleConvNet -------------------------

# Every option on at once (the drawn cases turn them on one by one): pinned with @example.
# sin(k) gives distinct pixels in [-1, 1]; with seed 0 the case is off every kink.
ALL_OPTIONS = {
    "kwargs": {"input_dim": (1, 6, 6),
               "conv_param": {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1},
               "hidden_size": 3, "output_size": 3, "weight_init_std": "he",
               "weight_decay_lambda": 0.1, "use_dropout": True, "dropout_ratio": 0.5,
               "use_batchnorm": True},
    "x": np.sin(np.arange(108.0)).reshape(3, 1, 6, 6), "t": np.array([0, 2, 1]), "seed": 0,
    "masks": [np.array([[True, False, True], [True, True, False], [False, True, True]])]}

def build(case: dict, device: torch.device) -> tuple:
    """(model, tmodel, x, t, xt, tt) from ``S.regularised_convnet_case``, dropout masks shared."""
    model = sm.SimpleConvNet(**case["kwargs"], seed=case["seed"], dtype=case["x"].dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    set_shared_masks(model, tmodel, case["masks"], device)
    x, t = case["x"], case["t"]
    return model, tmodel, x, t, torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)


@given(case=S.regularised_convnet_case())
@example(case=ALL_OPTIONS)
def test_regularised_convnet_parity(case: dict, device: torch.device) -> None:
    """Train-mode loss and every gradient (W with lambda W, b, gamma2, beta2), the running
    statistics it leaves, and test-mode logits: scratch backprop vs the torch mirror."""
    model, tmodel, x, t, xt, tt = build(case, device)
    assume_bn_off_kink(model, x)
    assert_model_parity(model, tmodel, x, t, xt, tt)


@given(case=S.regularised_convnet_case(np.float64, unique=True))
@example(case=ALL_OPTIONS)
def test_regularised_convnet_backprop_vs_numerical(case: dict) -> None:
    """Three ways in float64 with the options on: backprop, autograd, central differences."""
    model, tmodel, x, t, xt, tt = build(case, torch.device("cpu"))
    assume_smooth(model, x)
    grads, numeric, tgrads = (model.gradient(x, t), model.numerical_gradient(x, t),
                              tmodel.gradient(xt, tt))
    assert grads.keys() == numeric.keys() == tgrads.keys() == model.params.keys()
    for k in grads:
        assert_close(grads[k], numeric[k], mode="numerical", msg=f"backprop vs numerical, {k}")
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


@given(case=S.regularised_convnet_case(), steps=st.integers(1, 4), lr=st.floats(1e-3, 0.3),
       torch_way=st.booleans())
@example(case=ALL_OPTIONS, steps=3, lr=0.1, torch_way=False)
@example(case=ALL_OPTIONS, steps=3, lr=0.1, torch_way=True)
def test_regularised_convnet_sgd_in_lockstep(case: dict, steps: int, lr: float,
                                             torch_way: bool, device: torch.device) -> None:
    """k SGD steps with the options on agree.  ``torch_way``: the torch side drops the L2
    term from its loss and lets ``torch.optim.SGD(weight_decay=lambda)`` add ``lambda W``
    to the weights' gradients (``param_groups``), which is the same update."""
    model, tmodel, x, t, xt, tt = build(case, device)
    out = assume_bn_off_kink(model, x)
    if model.use_batchnorm:
        # batch norm cancels any shift of the hidden units common to the batch, so the
        # gradient of b2 (and of b1 where every relu is active) is 0 up to rounding, which
        # differs by side: after one step b1 is +-1e-17, and a conv output that was exactly
        # 0 (a window of zero pixels) then sits on the relu kink, on either side of it.
        assume(np.abs(out["Conv1"]).min() > MARGIN)
    lam = model.weight_decay_lambda
    if torch_way:
        tmodel.weight_decay_lambda = 0.0
        topt = torch.optim.SGD(tmodel.param_groups(lam), lr=lr)
    else:
        topt = torch.optim.SGD(tmodel.parameters(), lr=lr)
    steps_in_lockstep(model, tmodel, so.SGD(lr), topt, (x, t, xt, tt), steps)
    assert_same_params(model, tmodel, f"after {steps} SGD steps")
    assert_running_stats_close(model, tmodel, f" after {steps} SGD steps")
    assert_close(tmodel.predict(xt), model.predict(x), msg=f"test-mode logits after {steps}")


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_convnet_round_trip_with_batchnorm_statistics(dtype: type, device: torch.device) -> None:
    """Options, weights, gamma2/beta2 and the running statistics (with the layer's momentum
    and eps) survive scratch -> torch -> scratch exactly."""
    model = sm.SimpleConvNet((1, 8, 8), {"filter_num": 4, "filter_size": 3, "pad": 1},
                             hidden_size=6, seed=0, dtype=dtype, weight_decay_lambda=0.1,
                             use_dropout=True, dropout_ratio=0.25, use_batchnorm=True)
    assert list(model.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "BatchNorm1", "Relu2",
                                  "Dropout1", "Affine2"]
    assert list(model.params) == ["W1", "b1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    bn = model.layers["BatchNorm1"]
    bn.momentum, bn.eps = 0.8, 1e-5
    rng = np.random.default_rng(0)
    for _ in range(3):   # training passes: running statistics away from their zero start
        model.gradient(rng.standard_normal((5, 1, 8, 8)).astype(dtype), rng.integers(0, 10, 5))
    model.params["gamma2"][...] = rng.uniform(0.5, 2, 6)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    assert list(dict(tmodel.layers.named_children())) == list(model.layers)
    tbn = tmodel.layers.BatchNorm1
    assert (tbn.momentum, tbn.eps) == (0.8, 1e-5)
    np.testing.assert_array_equal(tbn.running_var.cpu().numpy(), bn.running_var)
    back = tmodel.to_scratch()
    assert (back.weight_decay_lambda, back.use_dropout, back.dropout_ratio,
            back.use_batchnorm) == (0.1, True, 0.25, True)
    for k, v in model.params.items():
        assert back.params[k].dtype == v.dtype
        np.testing.assert_array_equal(back.params[k], v)
    bback = back.layers["BatchNorm1"]
    assert (bback.momentum, bback.eps) == (0.8, 1e-5)
    for name in ("running_mean", "running_var"):
        assert np.abs(getattr(bn, name)).min() > 0
        np.testing.assert_array_equal(getattr(bback, name), getattr(bn, name))
    x = rng.standard_normal((3, 1, 8, 8)).astype(dtype)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))   # test mode, same stats


def test_convnet_weight_decay_term_and_option_errors() -> None:
    kwargs = {"input_dim": (1, 6, 6), "conv_param": {"filter_num": 2, "filter_size": 3},
              "hidden_size": 4, "output_size": 3, "seed": 1}
    model = sm.SimpleConvNet(**kwargs, weight_decay_lambda=0.5)
    plain = sm.SimpleConvNet(**kwargs)
    x, t = np.linspace(-1, 1, 72).reshape(2, 1, 6, 6), np.array([0, 2])
    expected = 0.25 * sum(np.sum(model.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert_close(model.loss(x, t) - plain.loss(x, t), np.float64(expected), msg="L2 term")
    assert_close(tm.SimpleConvNet.from_scratch(model).weight_decay(), np.float64(expected),
                 msg="torch L2 term")
    for cls in (sm.SimpleConvNet, tm.SimpleConvNet):
        with pytest.raises(ValueError, match="weight_decay_lambda: expected a non-negative"):
            cls(**kwargs, weight_decay_lambda=-1.0)
        with pytest.raises(ValueError, match=r"dropout_ratio: expected a number in \[0, 1\)"):
            cls(**kwargs, dropout_ratio=1.0)
