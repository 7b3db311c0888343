"""scratch.im2col vs torch's unfold / fold (torchref.im2col), and the adjoint identity."""

from __future__ import annotations

import numpy as np
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
