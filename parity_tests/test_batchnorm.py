"""scratch.batchnorm (hand-derived backward) vs torchref.batchnorm vs F.batch_norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import scratch.layers as sl
import torchref.layers as tl
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

STATE = ("gamma", "beta", "running_mean", "running_var")


def layers(case: dict, device: torch.device, **kwargs: object) -> tuple:
    ours = sl.BatchNormalization(*(case[k] for k in STATE[:2]), case["momentum"],
                                 case["running_mean"], case["running_var"], **kwargs)
    theirs = tl.BatchNormalization(
        *(torch.from_numpy(case[k]).to(device) for k in STATE[:2]), case["momentum"],
        *(torch.from_numpy(case[k]).to(device) for k in STATE[2:]), **kwargs)
    return ours, theirs


@given(case=S.batchnorm_case(), unbiased=st.booleans())
def test_batchnorm_train_then_eval(case: dict, unbiased: bool, device: torch.device) -> None:
    """Forward, dx, dgamma, dbeta and running statistics, in training and then in eval mode."""
    ours, theirs = layers(case, device, unbiased_running_var=unbiased)
    x, dout = case["x"], case["dout"]
    dout_before = dout.copy()
    for train in (True, False):
        out, dx = ours.forward(x, train_flg=train), ours.backward(dout)
        np.testing.assert_array_equal(dout, dout_before)
        theirs.zero_grad()
        theirs.train(train)
        xt = torch.from_numpy(x).to(device).requires_grad_(True)
        out_t = theirs(xt)
        out_t.backward(torch.from_numpy(dout).to(device))
        assert_close(out_t, out, msg=f"forward, train={train}")
        assert_close(xt.grad, dx, msg=f"dx, train={train}")
        assert_close(theirs.dgamma, ours.dgamma, msg=f"dgamma, train={train}")
        assert_close(theirs.dbeta, ours.dbeta, msg=f"dbeta, train={train}")
        assert_close(theirs.running_mean, ours.running_mean, msg=f"running_mean, train={train}")
        assert_close(theirs.running_var, ours.running_var, msg=f"running_var, train={train}")


@given(case=S.batchnorm_case())
def test_batchnorm_vs_native_F_batch_norm(case: dict, device: torch.device) -> None:
    """F.batch_norm with momentum = 1 - the course's: the same output, gradients, running_mean;
    running_var larger by exactly (1 - momentum) * var / (N - 1) (torch's unbiased estimate)."""
    x, dout, m = case["x"], case["dout"], case["momentum"]
    ours = sl.BatchNormalization(case["gamma"], case["beta"], m, case["running_mean"],
                                 case["running_var"])
    out, dx = ours.forward(x), ours.backward(dout)
    t = {k: torch.from_numpy(case[k]).to(device) for k in (*STATE, "x", "dout")}
    gamma, beta = (t[k].clone().requires_grad_(True) for k in ("gamma", "beta"))
    xt = t["x"].clone().requires_grad_(True)
    out_t = F.batch_norm(xt.flatten(1), t["running_mean"], t["running_var"], gamma, beta,
                         training=True, momentum=1 - m, eps=ours.eps).reshape(x.shape)
    out_t.backward(t["dout"])
    assert_close(out_t, out, msg="forward")
    assert_close(xt.grad, dx, msg="dx")
    assert_close(gamma.grad, ours.dgamma, msg="dgamma")
    assert_close(beta.grad, ours.dbeta, msg="dbeta")
    assert_close(t["running_mean"], ours.running_mean, msg="running_mean")
    flat = x.reshape(x.shape[0], -1)
    biased_var = flat.var(axis=0)
    assert_close(t["running_var"], ours.running_var + (1 - m) * biased_var / (len(x) - 1),
                 msg="torch running_var = course's + (1 - momentum) var / (N - 1)")
    # eval: both normalise with the running statistics.
    out_eval = F.batch_norm(t["x"].flatten(1), torch.from_numpy(ours.running_mean).to(device),
                            torch.from_numpy(ours.running_var).to(device), t["gamma"], t["beta"],
                            training=False, eps=ours.eps).reshape(x.shape)
    assert_close(out_eval, ours.forward(x, train_flg=False), msg="eval forward")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_course_defaults_and_momentum_meaning(momentum: float) -> None:
    """Running stats start at 0; momentum weighs the old value (torch's momentum = 1 - it)."""
    layer = sl.BatchNormalization(np.ones(2), np.zeros(2), momentum)
    assert layer.running_mean.tolist() == [0, 0] and layer.eps == 1e-6
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    layer.forward(x)
    np.testing.assert_allclose(layer.running_mean, (1 - momentum) * np.array([2.0, 4.0]))
    np.testing.assert_allclose(layer.running_var, (1 - momentum) * np.array([1.0, 4.0]))


def test_batchnorm_errors() -> None:
    for mod, arr in ((sl, lambda *s: np.ones(s)), (tl, torch.ones)):
        with pytest.raises(ValueError, match=r"beta: expected shape \(3,\) to match gamma"):
            mod.BatchNormalization(arr(3), arr(2))
        with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\)"):
            mod.BatchNormalization(arr(3), arr(3), momentum=1.0)
        layer = mod.BatchNormalization(arr(3), arr(3))
        with pytest.raises(ValueError, match=r"x: expected shape \(N, 3\) .* got \(2, 4\)"):
            layer.forward(arr(2, 4))
        with pytest.raises(ValueError, match=r"needs at least 2 samples, got shape \(1, 3\)"):
            layer.forward(arr(1, 3))
        layer.forward(arr(1, 3), train_flg=False)    # one sample is fine at test time
