"""SimpleConvNet: scratch backprop vs torch autograd vs numerical gradients, SGD in lockstep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import scratch.models as sm
import scratch.optim as so
import torchref.models as tm
from parity_tests import strategies as S
from torchref.tolerance import assert_close

MARGIN = 1e-3   # 10x the finite-difference step h = 1e-4


@given(case=S.convnet_case())
def test_convnet_logits_loss_gradients(case: dict, device: torch.device) -> None:
    model = sm.SimpleConvNet(**case["kwargs"], seed=case["seed"], dtype=case["x"].dtype)
    tmodel = tm.SimpleConvNet.from_scratch(model, device=device)
    x, t = case["x"], case["t"]
    xt, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    assert_close(tmodel.predict(xt), model.predict(x), msg="logits")
    assert_close(tmodel.loss(xt, tt), model.loss(x, t), msg="loss")
    grads, tgrads = model.gradient(x, t), tmodel.gradient(xt, tt)
    assert grads.keys() == tgrads.keys() == model.params.keys()
    for k in grads:
        assert_close(tgrads[k], grads[k], msg=f"autograd vs backprop, {k}")


def assume_smooth(model: sm.SimpleConvNet, x: np.ndarray) -> None:
    """Keep the finite differences off the loss's kinks (documented ``assume``).

    Central differences are wrong where the loss is not differentiable: a relu
    input within h of 0, or a max-pool window whose two largest (positive)
    values are within h of each other (the winner could swap).  A perturbation
    of one weight by h moves these values by at most ~h here (|x| <= 1, O(1)
    weights), so we ask for a margin of 10 h.  Windows whose max is 0 (all relu
    outputs 0) pass no gradient either way.
    """
    conv, pool = model.layers["Conv1"], model.layers["Pool1"]
    z1 = conv.forward(x)
    assume(np.abs(z1).min() > MARGIN)
    r1 = np.maximum(z1, 0)
    win, _ = pool.taps(r1)                        # (N, C, 2, 2, PH, PW)
    taps = np.sort(win.reshape(*win.shape[:2], 4, -1), axis=2)
    top, second = taps[:, :, -1], taps[:, :, -2]
    assume(np.all((top == 0) | (top - second > MARGIN)))
    z2 = model.layers["Affine1"].forward(pool.forward(r1))
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
    for _ in range(steps):
        opt.update(model.params, model.gradient(x, t))
        topt.zero_grad()
        tmodel.loss(xt, tt).backward()
        topt.step()
    for k, v in model.params.items():
        assert_close(tmodel.params[k], v, msg=f"{k} after {steps} SGD steps")
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
