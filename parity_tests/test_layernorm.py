"""scratch.layernorm (hand-derived backward) vs torchref.layernorm vs nn.LayerNorm.

The components table (test_components.py) compares forward, dx, dgamma and dbeta
against the mirror and ``F.layer_norm`` on drawn inputs; here: the module
``nn.LayerNorm`` itself, central differences, non-finite rows, edges and errors.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.layernorm as sln
import torchref.layernorm as tln
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

ONE_FEATURE = np.array([[3.0], [-2.0]])            # D = 1: xn = 0, the output is beta
CONSTANT_ROW = np.array([[[0.5, 0.5, 0.5]], [[1.0, -1.0, 2.0]]])   # std = sqrt(eps)


def torch_module(gamma: np.ndarray, beta: np.ndarray, eps: float,
                 device: torch.device) -> torch.nn.LayerNorm:
    module = torch.nn.LayerNorm(len(gamma), eps=eps, device=device,
                                dtype=torch.from_numpy(gamma).dtype)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(gamma))
        module.bias.copy_(torch.from_numpy(beta))
    return module


@given(dtype=S.dtypes, data=st.data())
@example(dtype=np.float64, data=ONE_FEATURE)
@example(dtype=np.float64, data=CONSTANT_ROW)
def test_layernorm_vs_nn_LayerNorm(dtype: type, data, device: torch.device) -> None:
    """Forward, dx, dgamma, dbeta: scratch vs the module ``nn.LayerNorm(D, eps)``."""
    x = data if isinstance(data, np.ndarray) else data.draw(S.layernorm_rows(dtype))
    x = x.astype(dtype)
    rng = np.random.default_rng(x.size)
    d = x.shape[-1]
    gamma, beta = (rng.uniform(-2, 2, d).astype(dtype) for _ in range(2))
    dout = rng.standard_normal(x.shape).astype(dtype)
    ours = sln.LayerNormalization(gamma, beta)
    out, dx = ours.forward(x), ours.backward(dout)
    module = torch_module(gamma, beta, 1e-5, device)
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    out_t = module(xt)
    out_t.backward(torch.from_numpy(dout).to(device))
    assert_close(out_t, out, msg="forward")
    assert_close(xt.grad, dx, msg="dx")
    assert_close(module.weight.grad, ours.dgamma, msg="dgamma")
    assert_close(module.bias.grad, ours.dbeta, msg="dbeta")
    if d == 1:
        np.testing.assert_array_equal(out, np.broadcast_to(beta, x.shape))


@given(case=S.layernorm_case(np.float64, spread=True, nonfinite=False), seed=S.seeds)
def test_layernorm_backward_vs_central_differences(case, seed: int) -> None:
    """dx, dgamma and dbeta against central differences of sum(out * dout), float64.
    Rows with a spread (std >= 0.57): a constant row has std = sqrt(eps) = 3e-3, on which
    scale h = 1e-4 is not small (truncation (h / std)^2 ~ 1e-3)."""
    (x,), (gamma, beta, eps) = case.args, case.init
    layer = sln.LayerNormalization(gamma.copy(), beta.copy(), eps)
    dout = np.random.default_rng(seed).standard_normal(x.shape)
    layer.forward(x)
    dx = layer.backward(dout)

    def loss(name: str):
        def f(w: np.ndarray) -> float:
            args = {"x": x, "gamma": gamma, "beta": beta, name: w}
            return float(np.sum(sln.LayerNormalization(args["gamma"], args["beta"], eps)
                                .forward(args["x"]) * dout))
        return f
    for name, grad in (("x", dx), ("gamma", layer.dgamma), ("beta", layer.dbeta)):
        target = {"x": x, "gamma": gamma, "beta": beta}[name]
        assert_close(grad, numerical_gradient(loss(name), target), mode="numerical",
                     msg=f"d{name}")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_non_finite_value_poisons_its_row_only(bad: float, dtype: type,
                                               device: torch.device) -> None:
    """torch defines the result: the row holding the value is NaN (inf - inf in x - mu),
    the other rows are untouched; forward and dx compared element by element."""
    x = np.arange(12.0).reshape(2, 2, 3).astype(dtype)
    x[0, 1, 2] = bad
    gamma, beta = np.array([1.0, -0.5, 2.0], dtype), np.array([0.1, 0.2, 0.3], dtype)
    dout = np.ones_like(x)
    ours = sln.LayerNormalization(gamma, beta)
    with np.errstate(invalid="ignore"):          # inf - inf: the NaN this test expects
        out, dx = ours.forward(x), ours.backward(dout)
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    module = tln.LayerNormalization(torch.from_numpy(gamma), torch.from_numpy(beta)).to(device)
    out_t = module(xt)
    out_t.backward(torch.from_numpy(dout).to(device))
    for name, theirs, mine in (("forward", out_t, out), ("dx", xt.grad, dx)):
        theirs = theirs.detach().cpu().numpy()
        np.testing.assert_array_equal(np.isnan(theirs), np.isnan(mine), err_msg=name)
        assert np.isnan(mine[0, 1]).all() and np.isfinite(np.delete(mine.reshape(4, 3), 1, 0)).all()
        keep = ~np.isnan(mine)
        assert_close(theirs[keep], mine[keep], msg=name)


ERRORS = [
    (lambda m, a: m.LayerNormalization(a(2, 3), a(3)),
     "gamma: expected a 1-D array (D,), got shape (2, 3)"),
    (lambda m, a: m.LayerNormalization(a(3), a(2)),
     "beta: expected shape (3,) to match gamma, got (2,)"),
    (lambda m, a: m.LayerNormalization(a(3), a(3), eps=0.0),
     "eps: expected a positive finite number, got 0.0"),
    (lambda m, a: m.LayerNormalization(a(3), a(3)).forward(a(2, 4)),
     "x: expected shape (..., 3), got (2, 4)"),
]


@pytest.mark.parametrize(("make", "message"), ERRORS)
def test_errors_same_on_both_sides(make, message: str) -> None:
    errors = []
    for module, ones in ((sln, lambda *s: np.ones(s)), (tln, lambda *s: torch.ones(s))):
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            make(module, ones)
        errors.append(str(err.value))
    assert errors[0] == errors[1]


def test_backward_preconditions() -> None:
    layer = sln.LayerNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(RuntimeError, match=r"LayerNormalization\.backward called before forward"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=re.escape("dout: expected shape (2, 3)")):
        layer.backward(np.ones((1, 3)))
