"""Strategies of convolution, pooling and SimpleConvNet configurations, valid by
construction (re-exported by ``torchref.testing.strategies``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchref.testing._strategies_arrays import arrays, dtypes, floats

# --- convolution and pooling -------------------------------------------------------------

@st.composite
def window_geometry(draw: st.DrawFn, max_kernel: int = 4, max_stride: int = 3,
                    max_pad: int = 2, max_extra: int = 4,
                    pool: bool = False) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, pad, (H, W)) for a window sliding over an image, valid by construction.

    Per axis: kernel k >= 1, stride s >= 1 (also larger than k), pad p (at most
    k // 2 for pooling, torch's rule), then the input size H from its smallest
    valid value ``max(1, k - 2p)`` (the kernel as large as the padded input, a
    single output pixel) up to ``max_extra`` more.
    """
    kernel, stride, pad, size = [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, max_kernel))
        s = draw(st.integers(1, max_stride))
        p = draw(st.integers(0, k // 2 if pool else max_pad))
        lo = max(1, k - 2 * p)
        kernel.append(k)
        stride.append(s)
        pad.append(p)
        size.append(draw(st.integers(lo, lo + max_extra)))
    return tuple(kernel), tuple(stride), tuple(pad), tuple(size)


def out_size(size: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
             pad: tuple[int, int]) -> tuple[int, int]:
    """``(H + 2p - k) // s + 1`` per axis (a helper, not a strategy)."""
    return tuple((i + 2 * p - k) // s + 1 for i, k, s, p in zip(size, kernel, stride, pad,
                                                                 strict=True))


@st.composite
def image_values(draw: st.DrawFn, dtype: type, shape: tuple[int, ...],
                 bound: float = 2.0) -> np.ndarray:
    """Images of unit-scale floats, or of a few small integers (many exact ties)."""
    if draw(st.booleans()):
        return draw(arrays(dtype, shape, bound))
    return draw(hnp.arrays(dtype, shape, elements=st.integers(-2, 2).map(float)))


@st.composite
def conv_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 3,
              max_c: int = 3, max_fn: int = 3) -> dict:
    """A whole convolution: x (N, C, H, W), W (FN, C, FH, FW), b, stride, pad, dout."""
    dtype = dtype or draw(dtypes)
    kernel, stride, pad, size = draw(window_geometry())
    n, c, fn = (draw(st.integers(1, m)) for m in (max_n, max_c, max_fn))
    oh, ow = out_size(size, kernel, stride, pad)
    return {"x": draw(image_values(dtype, (n, c, *size))),
            "W": draw(arrays(dtype, (fn, c, *kernel), 2.0)),
            "b": draw(arrays(dtype, (fn,), 2.0)),
            "stride": stride, "pad": pad,
            "dout": draw(arrays(dtype, (n, fn, oh, ow), 2.0))}


@st.composite
def conv3x3_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 2,
                 max_c: int = 10, max_fn: int = 4, max_pad: int = 2,
                 max_extra: int = 6) -> dict:
    """A 3x3, stride-1 convolution (the shapes of ``scratch.winograd``), as ``conv_case``.

    Per axis a pad from 0 to ``max_pad`` and an input size from its smallest valid
    value ``max(1, 3 - 2 pad)`` (one output pixel) up to ``max_extra`` more, so odd
    and even output sizes (edge tiles) both come up; up to ``max_c`` channels.
    """
    dtype = dtype or draw(dtypes)
    pad = tuple(draw(st.integers(0, max_pad)) for _ in range(2))
    size = tuple(draw(st.integers(max(1, 3 - 2 * p), max(1, 3 - 2 * p) + max_extra))
                 for p in pad)
    n, c, fn = (draw(st.integers(1, m)) for m in (max_n, max_c, max_fn))
    oh, ow = out_size(size, (3, 3), (1, 1), pad)
    return {"x": draw(image_values(dtype, (n, c, *size))),
            "W": draw(arrays(dtype, (fn, c, 3, 3), 2.0)),
            "b": draw(arrays(dtype, (fn,), 2.0)),
            "stride": (1, 1), "pad": pad,
            "dout": draw(arrays(dtype, (n, fn, oh, ow), 2.0))}


@st.composite
def pool_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 3,
              max_c: int = 3) -> dict:
    """A whole pooling: x (N, C, H, W) (ties included), kernel, stride, pad, dout."""
    dtype = dtype or draw(dtypes)
    kernel, stride, pad, size = draw(window_geometry(pool=True))
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    oh, ow = out_size(size, kernel, stride, pad)
    return {"x": draw(image_values(dtype, (n, c, *size))), "kernel": kernel,
            "stride": stride, "pad": pad, "dout": draw(arrays(dtype, (n, c, oh, ow), 2.0))}


@st.composite
def convnet_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 3,
                 unique: bool = False, min_n: int = 1) -> dict:
    """A small SimpleConvNet: constructor arguments, x (N, C, H, W), labels (N,), seed.

    The conv output is at least 2x2 so the 2x2 pooling fits: H >= FS + stride - 2 pad.
    ``unique`` draws pairwise distinct pixels in [-1, 1] (for finite differences).
    ``min_n=2`` for batch normalization in training.
    """
    dtype = dtype or draw(dtypes)
    fs, stride, pad = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    lo = max(1, fs + stride - 2 * pad)
    c = draw(st.integers(1, 2))
    h, w = draw(st.integers(lo, lo + 3)), draw(st.integers(lo, lo + 3))
    n, classes = draw(st.integers(min_n, max(min_n, max_n))), draw(st.integers(2, 4))
    if unique:
        x = draw(hnp.arrays(dtype, (n, c, h, w), elements=floats(dtype, 1.0), unique=True))
    else:
        x = draw(image_values(dtype, (n, c, h, w), 1.0))
    return {"kwargs": {"input_dim": (c, h, w),
                       "conv_param": {"filter_num": draw(st.integers(1, 3)), "filter_size": fs,
                                      "pad": pad, "stride": stride},
                       "hidden_size": draw(st.integers(1, 5)), "output_size": classes,
                       "weight_init_std": draw(st.sampled_from(["he", "xavier", 0.1]))},
            "x": x, "t": draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, classes - 1))),
            "seed": draw(st.integers(0, 2**32 - 1))}


@st.composite
def regularised_convnet_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 3,
                             unique: bool = False) -> dict:
    """A ``convnet_case`` with drawn options (weight decay, dropout, batch norm) in
    ``kwargs`` and ``masks``: one boolean dropout mask (N, hidden_size), or none.

    Batch normalization cases are float64 (see ``torchref.tolerance``) with N >= 2
    and pairwise distinct pixels: images of a few small integers can make a hidden
    unit equal on every image (or one image's value the batch mean), which puts the
    normalised value at the relu kink up to rounding, and the two sides round
    differently.  The tests still keep the normalised values off the kink
    (``assume``, documented there): distinct pixels do not guarantee it.
    """
    use_batchnorm = draw(st.booleans())
    case = draw(convnet_case(np.float64 if use_batchnorm else dtype, max_n=max_n,
                             unique=unique or use_batchnorm, min_n=2 if use_batchnorm else 1))
    options = {"weight_decay_lambda": draw(st.sampled_from([0.0, 0.1, 1.5])),
               "use_dropout": draw(st.booleans()), "dropout_ratio": draw(st.floats(0.0, 0.9)),
               "use_batchnorm": use_batchnorm}
    case["kwargs"].update(options)
    shape = (len(case["x"]), case["kwargs"]["hidden_size"])
    case["masks"] = [draw(hnp.arrays(np.bool_, shape))] if options["use_dropout"] else []
    return case
