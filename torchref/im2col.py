"""Mirror of ``scratch.im2col``: torch's own ``unfold`` / ``fold``.

``F.unfold`` lays out the windows exactly as ``scratch.im2col.im2col`` does,
(N, C*FH*FW, OH*OW); ``F.fold`` sums the columns back onto the pixels, which is
``col2im``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from scratch._checks import as_pair, check_ndim, conv_output_size


def im2col(x: torch.Tensor, filter_h: int, filter_w: int, stride: int | Sequence[int] = 1,
           pad: int | Sequence[int] = 0) -> torch.Tensor:
    check_ndim("x", tuple(x.shape), (4,))
    kernel, stride, pad = (filter_h, filter_w), as_pair("stride", stride, 1), as_pair("pad", pad)
    conv_output_size(tuple(x.shape[2:]), kernel, stride, pad)
    return F.unfold(x, kernel, padding=pad, stride=stride)


def col2im(col: torch.Tensor, x_shape: Sequence[int], filter_h: int, filter_w: int,
           stride: int | Sequence[int] = 1, pad: int | Sequence[int] = 0) -> torch.Tensor:
    check_ndim("x_shape", tuple(x_shape), (4,))
    kernel, stride, pad = (filter_h, filter_w), as_pair("stride", stride, 1), as_pair("pad", pad)
    conv_output_size(tuple(x_shape[2:]), kernel, stride, pad)
    return F.fold(col, tuple(x_shape[2:]), kernel, padding=pad, stride=stride)
