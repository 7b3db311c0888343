"""im2col / col2im: a convolution turned into one matrix product.

A convolution slides a (C, FH, FW) filter over a padded (C, H, W) image and
takes a dot product at each of the OH * OW window positions,

    OH = (H + 2 pad_h - FH) // stride_h + 1      (the same for OW)

(``//``: a last partial window is dropped, as torch does).  Lay every window out
as one column and the convolution is a single matrix product.  For image n:

    col[n]  shape (C*FH*FW, OH*OW)   col[n][(c, i, j), (oh, ow)]
                                       = x_pad[n, c, oh*stride_h + i, ow*stride_w + j]
    out[n]  = W.reshape(FN, C*FH*FW) @ col[n]       shape (FN, OH*OW)

Layout choice (the classic course uses the transpose, (N*OH*OW, C*FH*FW)):
rows are the filter taps (c, i, j) and columns the output pixels of one image,
the layout of ``torch.nn.functional.unfold``.  The product then lands directly
in NCHW order, (N, FN, OH*OW), so no transpose copy of the output is needed,
and the backward pass reuses the same columns.

How the columns are built without a loop: a padded array ``x_pad`` of shape
(N, C, Hp, Wp) with strides (sN, sC, sH, sW) *already contains* every window.
``windows`` makes a view of shape (N, C, FH, FW, OH, OW) whose strides are
(sN, sC, sH, sW, stride_h * sH, stride_w * sW): moving one tap (i, j) moves one
pixel, moving one output position moves ``stride`` pixels.  No data is copied;
``im2col``'s reshape of that view is the one copy, each input pixel written
once per window that contains it.

col2im is the adjoint (the transpose) of im2col: every column entry is added
back to the pixel it was read from.  Pixels shared by overlapping windows
receive the sum of their entries, which is exactly the chain rule for a value
used several times.  The scatter-add loops over the FH*FW taps; each tap adds
one strided (N, C, OH, OW) slab, so the loop has 25 iterations for a 5x5
kernel whatever the image size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch._checks import as_int, as_pair, check_ndim, conv_output_size


def _pad_images(x: np.ndarray, pad: tuple[int, int], fill: float = 0.0) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H + 2 pad_h, W + 2 pad_w), the border filled with ``fill``.

    Returns x itself (no copy) when there is no padding.
    """
    ph, pw = pad
    if ph == pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _windows(x_pad: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            out_hw: tuple[int, int]) -> np.ndarray:
    """A read-only strided view (N, C, FH, FW, OH, OW) of every window of ``x_pad``.

    ``view[n, c, i, j, oh, ow] = x_pad[n, c, oh*stride_h + i, ow*stride_w + j]``.
    """
    sn, sc, sh, sw = x_pad.strides
    n, c = x_pad.shape[:2]
    return as_strided(x_pad, shape=(n, c, *kernel, *out_hw),
                      strides=(sn, sc, sh, sw, stride[0] * sh, stride[1] * sw),
                      writeable=False)


def im2col(x: np.ndarray, filter_h: int, filter_w: int, stride: int | Sequence[int] = 1,
           pad: int | Sequence[int] = 0) -> np.ndarray:
    """Columns (N, C*FH*FW, OH*OW) of the FH x FW windows of x (N, C, H, W).

    Row ``(c*FH + i)*FW + j`` of ``col[n]`` holds tap (c, i, j) of every window,
    columns run over the output pixels in row-major (oh, ow) order; the same
    layout as ``torch.nn.functional.unfold``.  Zero padding ``pad`` and
    ``stride`` are ints or (height, width) pairs.
    """
    x = np.asarray(x)
    check_ndim("x", x.shape, (4,))
    kernel = as_pair("filter size", (filter_h, filter_w), 1)
    stride, pad = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
    out_hw = conv_output_size(x.shape[2:], kernel, stride, pad)
    n, c = x.shape[:2]
    view = _windows(_pad_images(x, pad), kernel, stride, out_hw)
    return view.reshape(n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])  # the one copy


def col2im(col: np.ndarray, x_shape: Sequence[int], filter_h: int, filter_w: int,
           stride: int | Sequence[int] = 1, pad: int | Sequence[int] = 0) -> np.ndarray:
    """The adjoint of ``im2col``: add each column entry back onto its pixel.

    ``col`` (N, C*FH*FW, OH*OW) -> (N, C, H, W) with ``x_shape = (N, C, H, W)``.
    Where windows overlap, the entries are summed (``torch.nn.functional.fold``);
    pixels that no window covers (cut off by the floor in OH) get 0; entries
    that fall on the padding are dropped.
    """
    check_ndim("x_shape", tuple(x_shape), (4,))
    n, c, h, w = (as_int("x_shape", v, 0) for v in x_shape)
    kernel = as_pair("filter size", (filter_h, filter_w), 1)
    (sh, sw), (ph, pw) = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
    oh, ow = conv_output_size((h, w), kernel, (sh, sw), (ph, pw))
    want = (n, c * kernel[0] * kernel[1], oh * ow)
    if tuple(col.shape) != want:
        raise ValueError(f"col: expected shape {want} for x_shape {(n, c, h, w)} and kernel "
                         f"{kernel}, got {tuple(col.shape)}")
    taps = col.reshape(n, c, *kernel, oh, ow)
    x_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            x_pad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += taps[:, :, i, j]
    return x_pad[:, :, ph:ph + h, pw:pw + w]
