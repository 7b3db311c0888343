"""scratch.winograd (Winograd F(2x2, 3x3), hand-derived backward) vs torch's conv2d and autograd.

The Winograd path is an internal algorithm of ``scratch.conv.Convolution`` (its mirror is
``F.conv2d``, see test_structure's NOT_MIRRORED); these tests run it directly and through the
layer, forced with ``algorithm="winograd"`` and picked by ``"auto"``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings

import scratch.conv as sc
from scratch.gradient import gradcheck
from scratch.winograd import Winograd3x3
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


def fixed_case(x_shape: tuple, fn: int, pad: tuple, dtype: type = np.float64) -> dict:
    """An explicit edge case for ``@example`` (values from a fixed ramp)."""
    w_shape = (fn, x_shape[1], 3, 3)
    x = (np.arange(np.prod(x_shape)) % 7 - 3).reshape(x_shape).astype(dtype) / 2
    W = (np.arange(np.prod(w_shape)) % 5 - 2).reshape(w_shape).astype(dtype) / 3
    oh, ow = S.out_size(x_shape[2:], (3, 3), (1, 1), pad)
    dout = (np.arange(x_shape[0] * fn * oh * ow) % 3 - 1.0).astype(dtype)
    return {"x": x, "W": W, "b": np.linspace(-1, 1, fn).astype(dtype), "stride": (1, 1),
            "pad": pad, "dout": dout.reshape(x_shape[0], fn, oh, ow)}


def torch_conv(case: dict) -> dict:
    """F.conv2d and autograd: out, dx, dW, db."""
    x, W, b = (torch.from_numpy(case[k]).requires_grad_(True) for k in ("x", "W", "b"))
    out = F.conv2d(x, W, b, stride=1, padding=case["pad"])
    out.backward(torch.from_numpy(case["dout"]))
    return {"out": out, "dx": x.grad, "dW": W.grad, "db": b.grad}


def winograd(case: dict, input_grad: bool = True) -> dict:
    layer = Winograd3x3(case["pad"])
    dout_before = case["dout"].copy()
    out = layer.forward(case["x"], case["W"], case["b"])
    dx, dW, db = layer.backward(case["dout"], input_grad)
    np.testing.assert_array_equal(case["dout"], dout_before)   # backward never mutates dout
    return {"out": out, "dx": dx, "dW": dW, "db": db}


def check_all(ours: dict, theirs: dict, case: dict) -> None:
    shapes = (case["x"].shape, case["W"].shape, case["pad"])
    for key in ("out", "dx", "dW", "db"):
        assert_close(ours[key], theirs[key], msg=f"{key}, x/W/pad {shapes}")


@given(case=S.conv3x3_case())
@example(case=fixed_case((1, 1, 1, 1), 1, (1, 1)))     # 1x1 image: one output pixel, one tile
@example(case=fixed_case((2, 1, 3, 3), 2, (0, 0)))     # C=1, pad 0: a single 1x1 output
@example(case=fixed_case((1, 2, 5, 7), 3, (0, 1)))     # odd output sizes: edge tiles cropped
@example(case=fixed_case((2, 3, 4, 6), 2, (2, 2)))     # pad 2: tiles read only padding
@example(case=fixed_case((1, 3, 6, 5), 2, (1, 0)))     # even rows, odd columns
def test_winograd_vs_autograd(case: dict) -> None:
    """out = A^T (sum_c (G g G^T) * (B^T d B)) A; each backward step transposes its forward."""
    check_all(winograd(case), torch_conv(case), case)


@settings(max_examples=10)
@given(case=S.conv3x3_case(dtype=np.float64, max_c=3, max_fn=2, max_extra=3))
@example(case=fixed_case((1, 1, 1, 1), 1, (1, 1)))
@example(case=fixed_case((1, 2, 4, 5), 2, (0, 2)))
def test_winograd_backward_vs_central_differences(case: dict) -> None:
    """dx, dW and db of the Winograd path against float64 central differences."""
    layer = sc.Convolution(case["W"].copy(), case["b"].copy(), pad=case["pad"])
    layer.algorithm = "winograd"
    gradcheck(layer, case["x"], fast=True, seed=0, n_directions=2).raise_if_failed()


def test_winograd_input_grad_false_skips_dx() -> None:
    case = fixed_case((2, 2, 5, 4), 3, (1, 1))
    full, first = winograd(case), winograd(case, input_grad=False)
    assert full["dx"] is not None and first["dx"] is None
    np.testing.assert_array_equal(first["dW"], full["dW"])
    np.testing.assert_array_equal(first["db"], full["db"])


def test_winograd_reused_for_a_smaller_image_keeps_its_padding_zero() -> None:
    # 14x14 then 13x13 with pad 1: the same number of tiles, so the internal buffers are
    # reused; the padded row and column after the 13x13 image (and the cropped part of
    # its dY tiles) must be 0 again, not the 14x14 image's (or dout's) last row and column.
    layer = Winograd3x3((1, 1))
    big, small = fixed_case((2, 3, 14, 14), 2, (1, 1)), fixed_case((2, 3, 13, 13), 2, (1, 1))
    layer.forward(big["x"] + 5.0, big["W"], big["b"])
    layer.backward(big["dout"] + 5.0)
    out = layer.forward(small["x"], small["W"], small["b"])
    dx, dW, db = layer.backward(small["dout"])
    check_all({"out": out, "dx": dx, "dW": dW, "db": db}, torch_conv(small), small)


def test_convolution_pad_changed_after_construction_is_used_by_both_paths() -> None:
    # pad is an attribute of the layer: a change after construction (or after a first call)
    # must reach the Winograd path too, not only im2col
    first, case = fixed_case((2, 8, 6, 6), 4, (0, 0)), fixed_case((2, 8, 6, 6), 4, (1, 1))
    for algorithm in ("winograd", "im2col"):
        layer = sc.Convolution(case["W"], case["b"], 1, 0)
        layer.algorithm = algorithm
        layer.forward(first["x"])
        layer.pad = (1, 1)
        out = layer.forward(case["x"])
        dx = layer.backward(case["dout"])
        check_all({"out": out, "dx": dx, "dW": layer.dW, "db": layer.db}, torch_conv(case), case)


@settings(max_examples=10)
@given(case=S.conv3x3_case(max_n=3, max_c=12))
@example(case=fixed_case((2, 8, 7, 7), 4, (1, 1), np.float32))
@example(case=fixed_case((2, 9, 4, 5), 3, (0, 2)))
def test_convolution_auto_path_vs_torch(case: dict) -> None:
    """The layer picks Winograd for 3x3 stride-1 filters on enough channels, im2col
    otherwise; either way it agrees with torch, and a second call reuses its buffers."""
    layer = sc.Convolution(case["W"], case["b"], pad=case["pad"])
    c = case["W"].shape[1]
    assert layer.uses_winograd(case["x"]) == (c >= sc.Convolution.WINOGRAD_MIN_CHANNELS)
    for _ in range(2):
        out = layer.forward(case["x"])
        ours = {"out": out, "dx": layer.backward(case["dout"]), "dW": layer.dW, "db": layer.db}
        check_all(ours, torch_conv(case), case)
    assert layer.path == ("winograd" if c >= sc.Convolution.WINOGRAD_MIN_CHANNELS else "im2col")


def test_convolution_winograd_picked_by_dtype_and_shape() -> None:
    x32 = np.zeros((1, 8, 5, 5), np.float32)
    W = np.zeros((2, 8, 3, 3), np.float32)
    b = np.zeros(2, np.float32)
    assert sc.Convolution(W, b, pad=1).uses_winograd(x32)
    assert sc.Convolution(W.astype(np.float64), b.astype(np.float64)).uses_winograd(
        x32.astype(np.float64))
    assert not sc.Convolution(W.astype(np.float16), b.astype(np.float16)).uses_winograd(
        x32.astype(np.float16))                                         # float16: im2col
    assert not sc.Convolution(W, b).uses_winograd(x32.astype(np.float64))   # mixed dtypes
    assert not sc.Convolution(W, b, stride=2).uses_winograd(x32)       # stride 2
    assert not sc.Convolution(W[:, :4], b).uses_winograd(x32[:, :4])   # too few channels
    layer = sc.Convolution(W, b)
    layer.algorithm = "im2col"
    assert not layer.uses_winograd(x32)


def test_convolution_algorithm_errors() -> None:
    W, b = np.zeros((2, 1, 5, 5)), np.zeros(2)
    layer = sc.Convolution(W, b)
    layer.algorithm = "winograd"
    with pytest.raises(ValueError, match="algorithm: 'winograd' needs 3x3 filters and stride 1"):
        layer.forward(np.zeros((1, 1, 6, 6)))
    layer.algorithm = "fft"
    with pytest.raises(ValueError, match="algorithm: expected one of"):
        layer.forward(np.zeros((1, 1, 6, 6)))


def test_backward_before_forward_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Winograd3x3((1, 1)).backward(np.zeros((1, 1, 2, 2)))
