"""scratch.conv (im2col, hand-written backward) vs torch's conv2d / pooling and autograd."""

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
from torchref.testing.plugin import NO_CUDA
from torchref.tolerance import assert_close, tf32_enabled


def conv_case_fixed(x_shape: tuple, w_shape: tuple, stride: tuple, pad: tuple,
                    dtype: type = np.float64) -> dict:
    """An explicit edge case for ``@example`` (values from a fixed ramp)."""
    x = (np.arange(np.prod(x_shape)) % 7 - 3).reshape(x_shape).astype(dtype) / 2
    W = (np.arange(np.prod(w_shape)) % 5 - 2).reshape(w_shape).astype(dtype) / 3
    oh, ow = S.out_size(x_shape[2:], w_shape[2:], stride, pad)
    dout = (np.arange(x_shape[0] * w_shape[0] * oh * ow) % 3 - 1.0).astype(dtype)
    return {"x": x, "W": W, "b": np.linspace(-1, 1, w_shape[0]).astype(dtype), "stride": stride,
            "pad": pad, "dout": dout.reshape(x_shape[0], w_shape[0], oh, ow)}


def run_conv(case: dict, device: torch.device) -> tuple[dict, dict]:
    """Forward and backward of both sides; returns (scratch, torch) results."""
    ours = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
    dout_before = case["dout"].copy()
    out = ours.forward(case["x"])
    dx = ours.backward(case["dout"])
    np.testing.assert_array_equal(case["dout"], dout_before)   # backward never mutates dout
    theirs = tl.Convolution(torch.from_numpy(case["W"]), torch.from_numpy(case["b"]),
                            case["stride"], case["pad"]).to(device)
    xt = torch.from_numpy(case["x"]).to(device).requires_grad_(True)
    out_t = theirs(xt)
    out_t.backward(torch.from_numpy(case["dout"]).to(device))
    return ({"out": out, "dx": dx, "dW": ours.dW, "db": ours.db},
            {"out": out_t, "dx": xt.grad, "dW": theirs.dW, "db": theirs.db})


@given(case=S.conv_case())
@example(case=conv_case_fixed((1, 1, 1, 1), (1, 1, 1, 1), (1, 1), (0, 0)))   # 1x1 everything
@example(case=conv_case_fixed((2, 2, 3, 4), (3, 2, 5, 6), (1, 1), (1, 1)))   # kernel = padded x
@example(case=conv_case_fixed((2, 1, 9, 7), (2, 1, 2, 3), (4, 5), (0, 2)))   # stride > kernel
@example(case=conv_case_fixed((1, 3, 6, 5), (2, 3, 1, 1), (2, 1), (0, 0)))   # 1x1 kernel
def test_convolution_vs_autograd(case: dict, device: torch.device) -> None:
    """out = W * x + b; dx = col2im(W^T dout), dW = dout col^T, db = sum dout."""
    ours, theirs = run_conv(case, device)
    shapes = (case["x"].shape, case["W"].shape, case["stride"], case["pad"])
    for key in ("out", "dx", "dW", "db"):
        assert_close(theirs[key], ours[key], msg=f"{key}, x/W/stride/pad {shapes}")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
@given(case=S.conv_case(dtype=np.float32))
def test_convolution_tf32_mode(case: dict) -> None:
    """cuDNN with TF32 on (its default on Ampere+) agrees within the policy's tf32 mode."""
    with tf32_enabled(True):
        ours, theirs = run_conv(case, torch.device("cuda"))
    for key in ("out", "dx", "dW", "db"):
        assert_close(theirs[key], ours[key], mode="tf32", msg=f"{key} with TF32")


def test_convolution_input_grad_false_skips_dx() -> None:
    case = conv_case_fixed((2, 2, 6, 5), (3, 2, 3, 2), (1, 2), (1, 0))
    full = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
    first = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"], input_grad=False)
    for layer in (full, first):
        layer.forward(case["x"])
    assert full.backward(case["dout"]) is not None
    assert first.backward(case["dout"]) is None
    np.testing.assert_array_equal(first.dW, full.dW)
    np.testing.assert_array_equal(first.db, full.db)


def conv_call(layer: sl.Convolution, x: np.ndarray, dout: np.ndarray) -> dict:
    """forward then backward of a scratch layer: out, dx, dW, db."""
    out = layer.forward(x)
    return {"out": out, "dx": layer.backward(dout), "dW": layer.dW, "db": layer.db}


@given(case=S.conv_case(), data=st.data())
def test_convolution_buffer_reuse_across_shapes(case: dict, data: st.DataObject,
                                                device: torch.device) -> None:
    """One layer called with shapes A, A, B, A: each call equals a fresh layer's, bit for bit,
    and torch's; results handed out by call 1 are not overwritten by the later calls."""
    _, c, h, w = case["x"].shape
    shape_b = (data.draw(st.integers(1, 3)), c, h + data.draw(st.integers(0, 2)),
               w + data.draw(st.integers(0, 2)))
    x_b = data.draw(S.arrays(data.draw(S.dtypes), shape_b))
    layer = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
    fresh = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
    oh_b, ow_b = S.out_size(shape_b[2:], case["W"].shape[2:], case["stride"], case["pad"])
    dout_b = data.draw(S.arrays(np.result_type(x_b, case["W"]),
                                (shape_b[0], case["W"].shape[0], oh_b, ow_b)))
    x, dout = case["x"], case["dout"]
    calls = [(x, dout), (x + 1, dout + 1), (x_b, dout_b), (x, dout)]
    inputs_before = [(x.copy(), d.copy()) for x, d in calls]
    results = []
    for k, (x, dout) in enumerate(calls):
        got, want = conv_call(layer, x, dout), conv_call(fresh, x, dout)
        fresh = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
        for key in got:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"call {k}: {key}")
        results.append({key: v.copy() for key, v in got.items()})
        if k == 0:
            held = got                                  # what a caller keeps from call 1
    for key in held:
        np.testing.assert_array_equal(held[key], results[0][key],
                                      err_msg=f"{key} of call 1 changed by later calls")
    for (x, dout), (x0, dout0) in zip(calls, inputs_before, strict=True):
        np.testing.assert_array_equal(x, x0)           # forward never mutates x,
        np.testing.assert_array_equal(dout, dout0)     # backward never mutates dout
    rt = np.result_type(x_b, case["W"])         # x_b may have another dtype than W
    _, theirs = run_conv({key: case[key].astype(rt) for key in ("W", "b")}
                         | {"x": x_b.astype(rt), "dout": dout_b, "stride": case["stride"],
                            "pad": case["pad"]}, device)
    assert_close(theirs["dx"], results[2]["dx"], msg=f"dx of call 3, x {shape_b}")
    assert_close(theirs["dW"], results[2]["dW"], msg=f"dW of call 3, x {shape_b}")


def test_convolution_backward_twice_after_one_forward() -> None:
    """backward reuses its dcol buffer: a second backward sees the same cached columns."""
    case = conv_case_fixed((3, 2, 6, 5), (4, 2, 3, 2), (1, 2), (1, 1))
    layer = sl.Convolution(case["W"], case["b"], case["stride"], case["pad"])
    layer.forward(case["x"])
    first = (layer.backward(case["dout"]), layer.dW, layer.db)
    layer.backward(2 * case["dout"])
    second = (layer.backward(case["dout"]), layer.dW, layer.db)
    for a, b_ in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b_)


@given(case=S.pool_case(), mode=st.sampled_from(["max", "avg"]))
def test_pooling_vs_autograd(case: dict, mode: str, device: torch.device) -> None:
    """Max: dout goes to the window's first maximum (torch's tie rule); avg: dout / K to all."""
    ours = sl.Pooling(*case["kernel"], stride=case["stride"], pad=case["pad"], mode=mode)
    out = ours.forward(case["x"])
    dx = ours.backward(case["dout"])
    theirs = tl.Pooling(*case["kernel"], stride=case["stride"], pad=case["pad"], mode=mode)
    xt = torch.from_numpy(case["x"]).to(device).requires_grad_(True)
    out_t = theirs(xt)
    out_t.backward(torch.from_numpy(case["dout"]).to(device))
    shapes = (case["x"].shape, case["kernel"], case["stride"], case["pad"])
    assert_close(out_t, out, msg=f"{mode} pool forward, x/kernel/stride/pad {shapes}")
    assert_close(xt.grad, dx, msg=f"{mode} pool dx, x/kernel/stride/pad {shapes}")


@given(case=S.pool_case(dtype=np.float64))
def test_max_pool_routes_each_gradient_to_one_maximum(case: dict) -> None:
    """Every dout lands on exactly one pixel holding its window's max: sum(dx) = sum(dout)."""
    pool = sl.Pooling(*case["kernel"], stride=case["stride"], pad=case["pad"])
    out = pool.forward(case["x"])
    ones = pool.backward(np.ones_like(out))
    assert_close(ones.sum(), np.float64(out.size), msg="each window routes to one pixel")
    dx = pool.backward(case["dout"])
    assert_close(dx.sum(), case["dout"].sum(), msg="sum(dx) = sum(dout)")
    # every pixel that received a gradient is the max of some window containing it
    assert set(np.unique(case["x"][ones > 0])) <= set(np.unique(out))


def test_max_pool_tie_goes_to_first_maximum_in_row_major_order(device: torch.device) -> None:
    """A window of equal values: torch (CPU and CUDA kernels) picks the first; so do we."""
    x = np.array([[[[1.0, 3.0, 2.0, 0.0],
                    [3.0, 3.0, 3.0, 3.0]]]])
    pool = sl.Pooling(2, 2)
    pool.forward(x)
    dx = pool.backward(np.array([[[[5.0, 7.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 5, 0, 0], [0, 0, 7, 0]]]])
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    F.max_pool2d(xt, 2).backward(torch.tensor([[[[5.0, 7.0]]]], dtype=torch.float64,
                                               device=device))
    assert_close(xt.grad, dx, msg="torch's choice among tied maxima")


def test_max_pool_nan_wins_like_torch(device: torch.device) -> None:
    """NaN propagates to the output and takes the gradient (the last NaN, as in torch)."""
    x = np.array([[[[np.nan, 1.0, 2.0, np.nan], [4.0, np.nan, 0.0, 1.0]]]])
    pool = sl.Pooling(2, 4, stride=1)
    out = pool.forward(x)
    dx = pool.backward(np.array([[[[1.0]]]]))
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    out_t = F.max_pool2d(xt, (2, 4), 1)
    out_t.backward(torch.ones_like(out_t))
    assert np.isnan(out).all() and torch.isnan(out_t).all()
    assert_close(xt.grad, dx, msg="gradient of a NaN maximum")


@given(case=S.pool_case(), mode=st.sampled_from(["max", "avg"]))
def test_pooling_default_stride_is_the_window(case: dict, mode: str) -> None:
    x = case["x"]
    kernel = (min(case["kernel"][0], x.shape[2]), min(case["kernel"][1], x.shape[3]))
    out = sl.Pooling(*kernel, mode=mode).forward(x)
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    assert_close(pool(torch.from_numpy(x), kernel), out, msg="stride=None is the window size")


CONV_ERRORS = [
    # (constructor args, input shape, message pattern)
    (((2, 3, 3), (2,)), (1, 3, 5, 5), r"W: expected a 4-D array, got shape \(2, 3, 3\)"),
    (((2, 1, 3, 3), (3,)), (1, 1, 5, 5), r"b: expected shape \(2,\) to match W"),
    (((2, 1, 3, 3), (2,), 0), (1, 1, 5, 5), r"stride: expected an integer >= 1"),
    (((2, 1, 3, 3), (2,), 1, -1), (1, 1, 5, 5), r"pad: expected an integer >= 0"),
    (((2, 1, 3, 3), (2,)), (1, 2, 5, 5), r"x: expected shape \(N, 1, H, W\) for W"),
    (((2, 1, 3, 3), (2,)), (1, 5, 5), r"x: expected shape \(N, 1, H, W\) for W"),
    (((2, 1, 4, 3), (2,), 1, 1), (1, 1, 1, 5), r"x: input height 1 with padding 1 is smaller "
                                              r"than the kernel height 4; expected height >= 2"),
]


@pytest.mark.parametrize(("args", "x_shape", "pattern"), CONV_ERRORS)
def test_convolution_errors_same_on_both_sides(args: tuple, x_shape: tuple,
                                               pattern: str) -> None:
    (w_shape, b_shape, *rest) = args
    messages = []
    for layer_cls, make in ((sl.Convolution, np.ones), (tl.Convolution, torch.ones)):
        with pytest.raises(ValueError, match=pattern) as err:
            layer_cls(make(w_shape), make(b_shape), *rest).forward(make(x_shape))
        messages.append(str(err.value))
    assert messages[0] == messages[1]


POOL_ERRORS = [
    # (constructor args and kwargs, input shape, message pattern)
    (((2, 2), {"mode": "min"}), (1, 1, 4, 4), r"mode: expected one of \('max', 'avg'\)"),
    (((2, 2), {"pad": 2}), (1, 1, 4, 4), r"pad: expected at most half the pool size"),
    (((0, 2), {}), (1, 1, 4, 4), r"pool size: expected an integer >= 1"),
    (((3, 2), {}), (1, 1, 2, 4), r"x: input height 2 with padding 0 is smaller than the kernel"),
    (((2, 2), {}), (1, 4, 4), r"x: expected a 4-D array"),
]


@pytest.mark.parametrize(("args", "x_shape", "pattern"), POOL_ERRORS)
def test_pooling_errors_same_on_both_sides(args: tuple, x_shape: tuple, pattern: str) -> None:
    (size, kwargs) = args
    messages = []
    for layer_cls, make in ((sl.Pooling, np.ones), (tl.Pooling, torch.ones)):
        with pytest.raises(ValueError, match=pattern) as err:
            layer_cls(*size, **kwargs).forward(make(x_shape))
        messages.append(str(err.value))
    assert messages[0] == messages[1]
