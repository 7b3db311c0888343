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
``_windows`` makes a view of shape (N, C, FH, FW, OH, OW) whose strides are
(sN, sC, sH, sW, stride_h * sH, stride_w * sW): moving one tap (i, j) moves one
pixel, moving one output position moves ``stride`` pixels.  No data is copied;
``im2col`` copies that view into an (N, C*FH*FW, OH*OW) array: the one copy,
each input pixel written once per window that contains it.  With ``out=`` that copy goes into a
caller's buffer (``_Workspace``): a layer called again and again with the same
shapes then writes into memory it already owns instead of asking the OS for
fresh pages, whose first-touch page faults cost about as much as the copy.

col2im is the adjoint (the transpose) of im2col: every column entry is added
back to the pixel it was read from.  Pixels shared by overlapping windows
receive the sum of their entries, which is exactly the chain rule for a value
used several times.  The scatter-add loops over the FH*FW taps; each tap adds
one strided (N, C, OH, OW) slab, so the loop has 25 iterations for a 5x5
kernel whatever the image size.  Entries that fall on the padding are never
added: each tap's slab is clipped to the outputs whose pixel lies inside the
image (``_tap_span``), so the result is written straight into a contiguous
(N, C, H, W) array, with no padded temporary to crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratch._checks import as_int, as_pair, check_ndim, conv_output_size


class _Workspace:
    """Scratch arrays kept between calls and reused while their shape and dtype repeat.

    ``get(name, shape, dtype)`` returns the array stored under ``name`` if it
    has that shape and dtype, else a new one (which replaces it).  Only for a
    layer's *internal* arrays (its columns, its padded input): a reused array
    is overwritten by the next call, so nothing handed back to a caller may
    live here.  ``fill`` sets a *new* array's values; a reused one keeps what
    was last written into it (a padded buffer's border stays ``fill`` because
    only its interior is ever written).
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype,
            fill: float | None = None) -> np.ndarray:
        a = self.arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            a = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self.arrays[name] = a
        return a


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
           pad: int | Sequence[int] = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Columns (N, C*FH*FW, OH*OW) of the FH x FW windows of x (N, C, H, W).

    Row ``(c*FH + i)*FW + j`` of ``col[n]`` holds tap (c, i, j) of every window,
    columns run over the output pixels in row-major (oh, ow) order; the same
    layout as ``torch.nn.functional.unfold``.  Zero padding ``pad`` and
    ``stride`` are ints or (height, width) pairs.  ``out``: a C-contiguous
    array of that shape and x's dtype to write the columns into (returned);
    by default a new one.
    """
    x = np.asarray(x)
    check_ndim("x", x.shape, (4,))
    kernel = as_pair("filter size", (filter_h, filter_w), 1)
    stride, pad = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
    out_hw = conv_output_size(x.shape[2:], kernel, stride, pad)
    n, c = x.shape[:2]
    shape = (n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])
    if out is None:
        out = np.empty(shape, x.dtype)
    elif out.shape != shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {x.dtype} array of shape {shape}, got "
                         f"{out.dtype} {out.shape} (contiguous: {out.flags.c_contiguous})")
    view = _windows(_pad_images(x, pad), kernel, stride, out_hw)
    np.copyto(out.reshape(view.shape), view)                    # the one copy
    return out


def _tap_span(offset: int, pad: int, stride: int, size: int, out_size: int
             ) -> tuple[slice, slice] | None:
    """Along one axis: the outputs whose tap ``offset`` reads a real (not padding) pixel.

    Output ``o`` reads padded position ``o*stride + offset``, i.e. image pixel
    ``p = o*stride + offset - pad``; keep the o with ``0 <= p < size``.  Returns
    (slice of outputs, slice of the pixels they read), or None if there is none.
    """
    first = max(0, -((offset - pad) // stride))              # ceil((pad - offset) / stride)
    stop = min(out_size, (size - 1 + pad - offset) // stride + 1)
    if stop <= first:
        return None
    start = first * stride + offset - pad
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


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
    x = np.zeros((n, c, h, w), dtype=col.dtype)
    for i in range(kernel[0]):
        rows = _tap_span(i, ph, sh, h, oh)
        for j in range(kernel[1]):
            cols = _tap_span(j, pw, sw, w, ow)
            if rows is not None and cols is not None:      # else the tap reads only padding
                x[:, :, rows[1], cols[1]] += taps[:, :, i, j, rows[0], cols[0]]
    return x
