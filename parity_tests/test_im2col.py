"""scratch.im2col vs torch's unfold / fold (torchref.im2col), and the adjoint identity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import scratch.im2col as si
import torchref.im2col as ti
from torchref.testing import strategies as S
from torchref.tolerance import assert_close


@given(case=S.conv_case(), data=st.data())
def test_im2col_and_col2im_vs_unfold_and_fold(case: dict, data: st.DataObject,
                                              device: torch.device) -> None:
    """Same column layout as F.unfold (bit-for-bit: a pure copy); col2im sums like F.fold."""
    x, (fh, fw) = case["x"], case["W"].shape[2:]
    args = (fh, fw, case["stride"], case["pad"])
    col = si.im2col(x, *args)
    xt = torch.from_numpy(x).to(device)
    np.testing.assert_array_equal(col, ti.im2col(xt, *args).cpu().numpy())
    c = data.draw(S.arrays(x.dtype, col.shape))
    assert_close(ti.col2im(torch.from_numpy(c).to(device), x.shape, *args),
                 si.col2im(c, x.shape, *args), msg="col2im vs F.fold")


@given(case=S.conv_case(dtype=np.float64), data=st.data())
def test_col2im_is_the_adjoint_of_im2col(case: dict, data: st.DataObject) -> None:
    """<im2col(x), c> = <x, col2im(c)>: why col2im is the backward of im2col.

    Integer-valued x and c keep every sum exact, so the identity holds to the bit.
    """
    x, (fh, fw) = np.round(4 * case["x"]), case["W"].shape[2:]
    args = (fh, fw, case["stride"], case["pad"])
    col = si.im2col(x, *args)
    c = data.draw(S.arrays(np.float64, col.shape)).round()
    assert_close(np.sum(col * c), np.sum(x * si.col2im(c, x.shape, *args)), msg="adjoint")


def test_tap_span_matches_brute_force() -> None:
    """Every (offset, pad, stride, size): the outputs whose pixel is inside the image, exactly."""
    for size, pad, stride, kernel in itertools.product(range(1, 6), range(3), range(1, 4),
                                                       range(1, 5)):
        if size + 2 * pad < kernel:
            continue
        out_size = (size + 2 * pad - kernel) // stride + 1
        for offset in range(kernel):
            want = [(o, o * stride + offset - pad) for o in range(out_size)
                    if 0 <= o * stride + offset - pad < size]
            span = si._tap_span(offset, pad, stride, size, out_size)
            got = [] if span is None else list(zip(range(out_size)[span[0]],
                                                   range(size)[span[1]], strict=True))
            assert got == want, (offset, pad, stride, size, out_size)


@given(case=S.conv_case())
def test_im2col_into_a_buffer(case: dict) -> None:
    """``out=`` fills and returns the caller's buffer, the same columns as a new array;
    col2im returns a new C-contiguous (N, C, H, W) array."""
    x, (fh, fw) = case["x"], case["W"].shape[2:]
    args = (fh, fw, case["stride"], case["pad"])
    want = si.im2col(x, *args)
    buf = np.full_like(want, np.nan)
    assert si.im2col(x, *args, out=buf) is buf
    np.testing.assert_array_equal(buf, want)
    dx = si.col2im(want, x.shape, *args)
    assert dx.shape == x.shape and dx.flags.c_contiguous


@pytest.mark.parametrize("bad", ["shape", "dtype", "layout"])
def test_im2col_out_errors(bad: str) -> None:
    x = np.zeros((2, 3, 5, 5))
    out = {"shape": np.empty((2, 27, 10)), "dtype": np.empty((2, 27, 9), np.float32),
           "layout": np.empty((2, 9, 27)).transpose(0, 2, 1)}[bad]
    with pytest.raises(ValueError, match=r"out: expected a C-contiguous float64 array of "
                                         r"shape \(2, 27, 9\)"):
        si.im2col(x, 3, 3, out=out)


def test_workspace_reuses_only_same_shape_and_dtype() -> None:
    work = si._Workspace()
    a = work.get("col", (2, 3), np.float64, fill=0)
    np.testing.assert_array_equal(a, 0)
    a[:] = 5
    assert work.get("col", (2, 3), np.float64) is a                 # same: reused, kept
    assert work.get("col", (3, 2), np.float64) is not a             # other shape: new
    assert work.get("col", (3, 2), np.float32).dtype == np.float32   # other dtype: new
