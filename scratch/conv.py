"""Convolution and pooling layers, forward and hand-derived backward (NCHW).

Same contract as ``scratch.layers``: ``forward`` caches what ``backward`` needs,
``backward(dout)`` returns dL/dx and leaves ``dW``/``db`` on the layer, and
never modifies ``dout``.  Shapes follow torch: x (N, C, H, W), W (FN, C, FH, FW).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratch._arrays import as_float_array
from scratch._checks import (
    POOL_MODES,
    as_pair,
    check_batch,
    check_dout,
    check_ndim,
    conv_output_size,
    forward_cache,
    pool_args,
)
from scratch.im2col import _pad_images, _windows, _Workspace, col2im, im2col
from scratch.winograd import Winograd3x3

ALGORITHMS = ("auto", "im2col", "winograd")


class Convolution:
    """2-D convolution (cross-correlation, as in torch): ``out = W * x + b``.

    Shapes: x (N, C, H, W), W (FN, C, FH, FW), b (FN,), out (N, FN, OH, OW) with
    ``OH = (H + 2 pad_h - FH) // stride_h + 1`` (and OW likewise).

    With ``col = im2col(x)`` (N, K, L), K = C*FH*FW taps and L = OH*OW pixels,
    and ``Wm = W.reshape(FN, K)``, the forward pass is one product per image:

        out[n] = Wm @ col[n] + b[:, None]                 (FN, L)

    Backward: it is the Affine layer's backward, with col[n] as the input:

        db  = sum over n and pixels of dout               (FN,)
        dW  = sum_n dout[n] @ col[n]^T, reshaped          (FN, C, FH, FW)
        dx  = col2im(Wm^T @ dout[n])                      (N, C, H, W)

    col2im adds each column entry back to the pixel it came from: a pixel read
    by several windows gets the sum of their gradients.

    ``input_grad=False`` skips dx (backward returns None): the first layer of a
    network never needs the gradient of its input, and torch's autograd skips
    it too when the input does not require grad.  Saves the Wm^T @ dout product
    and the col2im scatter.

    Speed (see BENCHMARKS.md): the three products are batched matmuls over the
    N images, so BLAS sees N products of (FN, K) x (K, L) shapes; stacking the
    batch into one (K, N*L) product measured no faster here and would need
    transposes of col and dout.  What did cost was memory: the padded input,
    col (N, K, L) and dcol are the layer's own arrays (a ``_Workspace``), reused
    while the shapes repeat, which saves the page faults of fresh allocations
    each step.  ``out``, ``dx``, ``dW`` and ``db`` are always new arrays: a
    caller may keep them.  The price is memory: between calls the layer holds
    dcol as well as col, about twice col's size (0.9 GB for a float64 batch of
    32 images of 64x56x56 with 64 3x3 filters).

    Winograd: a float32 or float64 layer with 3x3 filters, stride 1 (any
    padding) and at least ``WINOGRAD_MIN_CHANNELS`` input channels runs
    ``scratch.winograd``'s F(2x2, 3x3) algorithm instead (2.25x fewer
    multiplies): on every such shape measured it was faster than im2col, in
    both dtypes (BENCHMARKS.md, "Winograd").  With fewer input channels (the
    first layer of a network, C = 1 or 3; C = 4 measured) im2col stays faster,
    since Winograd's 16 products then have an inner size of only C, too thin
    for BLAS; other dtypes (float16) and other filters keep im2col too.
    ``algorithm`` ("auto", the default, "im2col" or "winograd"; an attribute,
    set after construction) forces one path, e.g. to compare them.  Both
    compute the same convolution and round differently (``torchref.tolerance``).
    """

    WINOGRAD_MIN_CHANNELS = 8

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int | Sequence[int] = 1,
                 pad: int | Sequence[int] = 0, input_grad: bool = True) -> None:
        check_ndim("W", np.shape(W), (4,))
        if np.shape(b) != (np.shape(W)[0],):
            raise ValueError(f"b: expected shape ({np.shape(W)[0]},) to match W "
                             f"{np.shape(W)}, got {np.shape(b)}")
        self.W, self.b = W, b
        self.stride, self.pad = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
        self.input_grad = input_grad
        self.x_shape: tuple[int, ...] = ()
        self.col: np.ndarray | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None
        self.work = _Workspace()          # padded input, col, dcol: reused between calls
        self.algorithm = "auto"
        self.path: str | None = None      # the path the last forward took: "im2col" or "winograd"
        self.winograd = Winograd3x3(self.pad)        # its own cache and buffers

    def uses_winograd(self, x: np.ndarray) -> bool:
        """Whether ``forward(x)`` takes the Winograd path (see the class docstring)."""
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {ALGORITHMS}, got {self.algorithm!r}")
        fits = self.W.shape[2:] == (3, 3) and self.stride == (1, 1)
        if self.algorithm == "winograd" and not fits:
            raise ValueError(f"algorithm: 'winograd' needs 3x3 filters and stride 1, got "
                             f"filters {self.W.shape[2:]} and stride {self.stride}")
        if self.algorithm != "auto":
            return self.algorithm == "winograd"
        return (fits and x.dtype in (np.float32, np.float64) and self.W.dtype == x.dtype
                and self.W.shape[1] >= self.WINOGRAD_MIN_CHANNELS)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        fn, c, fh, fw = self.W.shape
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"x: expected shape (N, {c}, H, W) for W {self.W.shape}, "
                             f"got {x.shape}")
        check_batch("x", x.shape)
        (n, _, h, w), (ph, pw) = x.shape, self.pad
        oh, ow = conv_output_size((h, w), (fh, fw), self.stride, self.pad)
        self.x_shape = x.shape
        self.col = self.winograd.V = None                 # backward before forward: an error
        if self.uses_winograd(x):
            self.path = "winograd"
            dtype = np.result_type(x, self.W)
            self.winograd.pad = self.pad                  # the layer's, read at every call
            return self.winograd.forward(x.astype(dtype, copy=False), self.W, self.b)
        self.path = "im2col"
        x_pad = x
        if ph or pw:            # the border of a reused buffer is still 0: write the interior
            x_pad = self.work.get("x_pad", (n, c, h + 2 * ph, w + 2 * pw), x.dtype, fill=0)
            x_pad[:, :, ph:ph + h, pw:pw + w] = x
        self.col = im2col(x_pad, fh, fw, self.stride, 0,            # (N, K, L)
                          out=self.work.get("col", (n, c * fh * fw, oh * ow), x.dtype))
        out = np.matmul(self.W.reshape(fn, -1), self.col)             # (N, FN, L), one GEMM
        out += self.b.reshape(fn, 1)                                  # per image (BLAS)
        return out.reshape(n, fn, oh, ow)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        fn, _, fh, fw = self.W.shape
        if self.path == "winograd":
            if self.x_shape:                          # dout errors name this layer
                oh, ow = conv_output_size(self.x_shape[2:], (fh, fw), self.stride, self.pad)
                check_dout(self, np.shape(dout), (self.x_shape[0], fn, oh, ow))
            dx, self.dW, self.db = self.winograd.backward(dout, self.input_grad)
            return dx
        forward_cache(self, "col")
        oh, ow = conv_output_size(self.x_shape[2:], (fh, fw), self.stride, self.pad)
        check_dout(self, np.shape(dout), (self.x_shape[0], fn, oh, ow))
        n, k = self.col.shape[:2]
        dout = dout.reshape(n, fn, -1)                                # (N, FN, L)
        self.db = dout.sum(axis=(0, 2))
        # dW: (N, FN, L) @ (N, L, K) -> (N, FN, K), summed over the batch.  The
        # transposed view of col is passed to BLAS as "transposed", not copied.
        # Which orientation BLAS runs faster depends on its kernels: here (OpenBLAS)
        # the float32 product dW^T = col @ dout^T, (N, K, FN), took 0.57x and 0.85x
        # the time on the two shapes where scratch trailed torch (N100 C16 14x14,
        # N32 C64 56x56; 1.1-1.2x on the others), float64 the reverse.
        dtype = np.result_type(dout, self.col)
        if dtype == np.float32:
            per_image = self.work.get("dWT_n", (n, k, fn), dtype)
            np.matmul(self.col, dout.transpose(0, 2, 1), out=per_image)
            self.dW = per_image.sum(axis=0).T.reshape(self.W.shape)  # a new array
        else:
            per_image = self.work.get("dW_n", (n, fn, k), dtype)
            np.matmul(dout, self.col.transpose(0, 2, 1), out=per_image)
            self.dW = per_image.sum(axis=0).reshape(self.W.shape)   # a new array
        if not self.input_grad:
            return None
        Wm = self.W.reshape(fn, k)
        dcol = self.work.get("dcol", self.col.shape, np.result_type(Wm, dout))
        np.matmul(Wm.T, dout, out=dcol)                               # (N, K, L)
        return col2im(dcol, self.x_shape, fh, fw, self.stride, self.pad)   # a new array


class Pooling:
    """Max (or average) pooling over pool_h x pool_w windows, per channel.

    ``stride`` defaults to the window size, as in torch (windows tile the image
    without overlap); the course's code defaults to 1.  ``pad`` (at most half
    the window, torch's rule) pads with -inf for max and 0 for average, and
    ``OH = (H + 2 pad_h - pool_h) // stride_h + 1``.

    The K = pool_h * pool_w taps of every window are K strided views
    ``a_k`` (N, C, OH, OW) of the input (``scratch.im2col._windows``), so both
    passes are a loop over the few taps with no im2col copy.

    Max: ``out = max_k a_k``.  Its derivative is 1 for the winning tap and 0
    for the others, so backward routes each dout to the input pixel that won
    (summed where windows overlap).  Ties are broken exactly as torch does on
    CPU and CUDA: scan the taps in row-major order and move the winner only on
    a *strictly* greater value, or on NaN (so the first maximum wins, and the
    last NaN if there are NaNs).  One divergence: a window whose real pixels
    are all -inf sends torch's gradient to its first real pixel, ours to its
    first tap, which may be padding (then dropped).

    Average (``mode="avg"``): ``out = sum_k a_k / K`` with the padding counted
    as zeros (torch's ``count_include_pad=True``); backward spreads ``dout / K``
    evenly over the window.
    """

    MODES = POOL_MODES

    def __init__(self, pool_h: int, pool_w: int, stride: int | Sequence[int] | None = None,
                 pad: int | Sequence[int] = 0, mode: str = "max") -> None:
        self.kernel, self.stride, self.pad = pool_args(pool_h, pool_w, stride, pad, mode)
        self.mode = mode
        self.x_shape: tuple[int, ...] | None = None
        self.arg: np.ndarray | None = None

    def taps(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The (N, C, pool_h, pool_w, OH, OW) window view of x, and (OH, OW)."""
        out_hw = conv_output_size(x.shape[2:], self.kernel, self.stride, self.pad)
        fill = -np.inf if self.mode == "max" else 0.0
        return _windows(_pad_images(x, self.pad, fill), self.kernel, self.stride, out_hw), out_hw

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        check_ndim("x", x.shape, (4,))
        check_batch("x", x.shape)
        self.x_shape = x.shape
        win, _ = self.taps(x)
        kh, kw = self.kernel
        if self.mode == "avg":
            out = win[:, :, 0, 0].copy()
            for k in range(1, kh * kw):
                out += win[:, :, k // kw, k % kw]
            return out / (kh * kw)
        out = win[:, :, 0, 0].copy()
        arg = np.zeros(out.shape, dtype=np.min_scalar_type(-kh * kw))   # winning tap index
        for k in range(1, kh * kw):
            a = win[:, :, k // kw, k % kw]
            moved = (a > out) | np.isnan(a)
            np.maximum(out, a, out=out)   # equals where(moved, a, out), NaN included
            arg += moved * (k - arg)      # k where moved, else arg: a branch-free select
        self.arg = arg
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = forward_cache(self, "x_shape")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.pad
        oh, ow = conv_output_size((h, w), self.kernel, self.stride, self.pad)
        check_dout(self, np.shape(dout), (n, c, oh, ow))
        dx = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
        disjoint = sh >= kh and sw >= kw        # each pixel in at most one window
        finite = np.isfinite(dout).all()
        for k in range(kh * kw):
            i, j = divmod(k, kw)
            target = dx[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]   # tap k of every window
            if self.mode == "avg":
                target += dout / (kh * kw)
            elif disjoint and finite:    # multiply by the 0/1 mask: about 10x faster than
                np.multiply(dout, self.arg == k, out=target)   # np.where (see Relu)
            elif disjoint:     # select, not multiply: an infinite dout would give inf * 0 = NaN
                np.copyto(target, np.where(self.arg == k, dout, 0))
            else:
                target += np.where(self.arg == k, dout, 0)
        return dx[:, :, ph:ph + h, pw:pw + w]
