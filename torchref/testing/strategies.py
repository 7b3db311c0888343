"""Every hypothesis strategy of the parity suite, in one module.

Shapes and values are drawn by construction: a strategy for labels first draws
the number of classes and then labels below it, never a filter that throws
most draws away.  Values include the numerical edges (logits up to +-1e4, ties,
single samples) because ``floats`` shrinks towards and samples boundaries.
"""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float32, np.float64)

# For tests whose every example is a long run (50 optimizer steps): a third of the
# profile's examples (ci 8, dev 33, thorough 333).  conftest loads the profile first.
long_run = settings(max_examples=max(1, settings.default.max_examples // 3))

dtypes = st.sampled_from(FLOAT_DTYPES)


def floats(dtype: type, bound: float) -> st.SearchStrategy[float]:
    """Finite floats in [-bound, bound] representable in ``dtype``."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)


def arrays(dtype: type, shape: tuple[int, ...] | st.SearchStrategy,
           bound: float = 10.0) -> st.SearchStrategy[np.ndarray]:
    """Arrays of finite values in [-bound, bound]."""
    return hnp.arrays(dtype, shape, elements=floats(dtype, bound))


@st.composite
def batch_matrix(draw: st.DrawFn, dtype: type | None = None, max_n: int = 8, max_c: int = 8,
                 bound: float = 10.0) -> np.ndarray:
    """(N, C) arrays, N and C from 1 up, any float dtype."""
    dtype = dtype or draw(dtypes)
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    return draw(arrays(dtype, (n, c), bound))


@st.composite
def logits(draw: st.DrawFn, dtype: type | None = None, max_n: int = 8, max_c: int = 10,
           one_dim: bool | None = None) -> np.ndarray:
    """Logits of unit scale, of magnitude up to 1e4, or rows of exact ties.

    Shape (N, C), or (C,) for a single sample when ``one_dim`` (drawn if None).
    """
    dtype = dtype or draw(dtypes)
    one_dim = draw(st.booleans()) if one_dim is None else one_dim
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    shape = (c,) if one_dim else (n, c)
    kind = draw(st.sampled_from(["unit", "huge", "ties"]))
    if kind == "ties":
        return np.full(shape, draw(floats(dtype, 1e4)), dtype=dtype)
    return draw(arrays(dtype, shape, 10.0 if kind == "unit" else 1e4))


@st.composite
def labels_for(draw: st.DrawFn, scores: np.ndarray) -> np.ndarray:
    """Integer labels in [0, C) matching scores (C,) -> () or (N, C) -> (N,)."""
    c = scores.shape[-1]
    return draw(hnp.arrays(np.int64, scores.shape[:-1], elements=st.integers(0, c - 1)))


def onehot(labels: np.ndarray, n_classes: int, dtype: type) -> np.ndarray:
    """One-hot rows for integer labels (a helper, not a strategy)."""
    return np.eye(n_classes, dtype=dtype)[labels]


@st.composite
def probabilities(draw: st.DrawFn, dtype: type | None = None, max_n: int = 8,
                  max_c: int = 8) -> np.ndarray:
    """(N, C) rows of probabilities (softmax of drawn logits, zeros included)."""
    dtype = dtype or draw(dtypes)
    z = draw(logits(dtype, max_n, max_c, one_dim=False))
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)


@st.composite
def mlp_case(draw: st.DrawFn, dtype: type | None = None, max_width: int = 6,
             max_layers: int = 3, max_n: int = 5,
             min_n: int = 1) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """A small MLP configuration: (sizes, x (N, D), integer labels (N,), weight seed).

    ``min_n=2`` for batch normalization in training (one sample has no variance).
    """
    dtype = dtype or draw(dtypes)
    sizes = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=max_layers + 1))
    sizes[-1] = max(sizes[-1], 2)   # at least two classes
    n = draw(st.integers(min_n, max(min_n, max_n)))
    x = draw(arrays(dtype, (n, sizes[0]), 3.0))
    t = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, sizes[-1] - 1)))
    seed = draw(st.integers(0, 2**32 - 1))
    return sizes, x, t, seed


OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


@st.composite
def optimizer_kwargs(draw: st.DrawFn, name: str, max_lr: float = 0.3,
                     min_decay: float = 0.0, min_eps: float | None = None) -> dict:
    """Hyper-parameters of ``scratch.optim.OPTIMIZERS[name]``, each drawn over its range.

    ``min_decay`` bounds RMSprop's decay_rate and Adam's beta2 from below: near 0
    the second moment forgets its history and the step is ``lr * sign(g)``, which
    jumps at g = 0, so over many steps rounding decides it (training runs use 0.9).
    ``min_eps``: draw the adaptive optimizers' eps from [min_eps, 0.1] instead of
    the course's 1e-7 (see ``torchref.tolerance``: the step amplifies rounding by lr/eps).
    """
    kwargs: dict = {"lr": draw(st.floats(1e-4, max_lr))}
    if name in ("momentum", "nesterov"):
        kwargs["momentum"] = draw(st.floats(0.0, 0.99))
    elif name == "rmsprop":
        kwargs["decay_rate"] = draw(st.floats(min_decay, 0.999))
    elif name == "adam":
        kwargs["beta1"] = draw(st.floats(0.0, 0.99))
        kwargs["beta2"] = draw(st.floats(min_decay, 0.9999))
    if min_eps is not None and name in ("adagrad", "rmsprop", "adam"):
        kwargs["eps"] = draw(st.floats(min_eps, 0.1))
    return kwargs


@st.composite
def dropout_case(draw: st.DrawFn, dtype: type | None = None
                 ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(x, mask, ratio, dout): x (N, D) or (N, C, H, W), a boolean keep-mask of its shape.

    The mask is drawn directly (any pattern, all-kept and all-dropped included),
    since the two sides' random streams cannot be made to agree.
    """
    dtype = dtype or draw(dtypes)
    shape = draw(st.sampled_from([2, 4]).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 4)] * nd)))
    x = draw(arrays(dtype, shape))
    mask = draw(hnp.arrays(np.bool_, shape))
    ratio = draw(st.floats(0.0, 0.9))
    return x, mask, ratio, draw(arrays(dtype, shape))


@st.composite
def batchnorm_case(draw: st.DrawFn, dtype: type | None = None) -> dict:
    """Inputs of a batch-norm layer: x (N, D) or (N, C, H, W) with N >= 2, and its state.

    Conditioning, by construction: an output ``(x - mu) / std`` carries the
    rounding of x and mu divided by std, and torch's kernel folds it into
    ``x * a + (beta - mu * a)`` with ``a = gamma / std``, so the absolute error
    is about ``u * |x| * |gamma| / std``.  x is therefore drawn on the grid
    k / 2, |k| <= 8 (exact in both formats, so a constant column has an exact
    mean); in float32 every column has a spread of at least 1 (std >= 1/3),
    while float64 also draws constant columns (std = 0, where only eps keeps
    the division finite: 1/sqrt(eps) = 1000 times the rounding, still far inside
    its policy).  gamma, beta and the running statistics are modest
    (|gamma| <= 2, running_var in [0.25, 4]) for the same reason.
    """
    dtype = dtype or draw(dtypes)
    image = draw(st.booleans())
    n = draw(st.integers(2, 6))
    feat = draw(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2))
                if image else st.tuples(st.integers(1, 5)))
    shape = (n, *feat)
    d = int(np.prod(feat))
    k = draw(hnp.arrays(np.int64, shape, elements=st.integers(-8, 8)))
    if dtype == np.float32 or not draw(st.booleans()):
        flat = k.reshape(n, d)
        flat[0] = flat[1] + np.where(flat[1] < 8, 1, -1)     # row 0 differs from row 1
    x = (k / 2).astype(dtype)

    def vec(lo: float, hi: float) -> np.ndarray:
        return draw(hnp.arrays(dtype, (d,), elements=st.floats(lo, hi, width=32)))
    return {"x": x, "gamma": vec(-2, 2), "beta": vec(-2, 2),
            "running_mean": vec(-4, 4), "running_var": vec(0.25, 4),
            "momentum": draw(st.floats(0.0, 0.99)),
            "dout": draw(arrays(dtype, shape, 4.0))}


@st.composite
def regularised_mlp_case(draw: st.DrawFn, dtype: type | None = None, max_width: int = 6,
                         max_n: int = 5) -> tuple:
    """(sizes, x, t, seed, options, masks): an MLP case with drawn ``scratch.models.MLP``
    options (activation, weight decay, dropout, batch norm) and one boolean dropout mask
    (N, width) per hidden layer (empty without dropout).  Batch normalization cases are
    float64 (see ``torchref.tolerance`` on its conditioning) with N >= 2 and a spread.
    """
    use_batchnorm = draw(st.booleans())
    dtype = np.float64 if use_batchnorm else dtype
    sizes, x, t, seed = draw(mlp_case(dtype, max_width=max_width, max_n=max_n,
                                      min_n=2 if use_batchnorm else 1))
    if use_batchnorm:
        # rows 0 and 1 differ by 1 in every feature: no hidden unit is constant over the
        # batch by construction, where batch norm would put rounding noise (+-1e-13) at
        # the relu kink and the two sides would pick different sides of it.
        x = x.copy()
        x[0] = x[1] + 1
    options = {"activation": draw(st.sampled_from(["relu", "sigmoid"])),
               "weight_decay_lambda": draw(st.sampled_from([0.0, 0.1, 1.5])),
               "use_dropout": draw(st.booleans()), "dropout_ratio": draw(st.floats(0.0, 0.9)),
               "use_batchnorm": use_batchnorm}
    masks = ([draw(hnp.arrays(np.bool_, (len(x), w))) for w in sizes[1:-1]]
             if options["use_dropout"] else [])
    return sizes, x, t, seed, options, masks


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


# ---- gradcheck and the parity harness -------------------------------------------------------

seeds = st.integers(0, 2**32 - 1)


@st.composite
def nonsymmetric_square(draw: st.DrawFn, dtype: type = np.float64, max_d: int = 5,
                        bound: float = 3.0) -> np.ndarray:
    """(D, D) matrices, D >= 2, that are never symmetric: W + 10 * (strict upper triangle).

    Every off-diagonal pair then differs by at least 10 - 2 * bound, so a missing
    transpose (W where W^T belongs) always changes the result.
    """
    d = draw(st.integers(2, max_d))
    w = draw(arrays(dtype, (d, d), bound))
    return (w + 10 * np.triu(np.ones((d, d)), 1)).astype(dtype)


@st.composite
def smooth_batch(draw: st.DrawFn, dtype: type = np.float64, max_n: int = 4, max_c: int = 5,
                 bound: float = 3.0) -> np.ndarray:
    """(N, C) arrays of moderate values (|x| <= 3): sigmoids are not saturated there."""
    return draw(batch_matrix(dtype, max_n, max_c, bound))


# ---- input makers of the components table (torchref.components): dtype -> strategy of Case ----

def _case(*args: object, init: tuple = (), **kwargs: object):
    from torchref.parity import Case
    return Case(tuple(args), tuple(init), kwargs)


def elementwise_case(dtype: type, bound: float = 1e4) -> st.SearchStrategy:
    """One array (N, C), N from 0, values up to +-1e4 (the overflow edges of exp)."""
    shape = st.tuples(st.integers(0, 5), st.integers(1, 6))
    return arrays(dtype, shape, bound).map(_case)


@st.composite
def softmax_case(draw: st.DrawFn, dtype: type) -> object:
    """Logits (1-D or 2-D, unit, huge or tied) and the axis, -1 or (2-D only) 0."""
    x = draw(logits(dtype))
    return _case(x, axis=draw(st.sampled_from([-1, 0])) if x.ndim == 2 else -1)


@st.composite
def mse_case(draw: st.DrawFn, dtype: type) -> object:
    """y and t of one shape, (K,) or (N, K)."""
    shape = draw(st.sampled_from([1, 2]).flatmap(
        lambda nd: st.tuples(*[st.integers(1, 6)] * nd)))
    return _case(draw(arrays(dtype, shape)), draw(arrays(dtype, shape)))


@st.composite
def _targets(draw: st.DrawFn, scores: np.ndarray) -> np.ndarray:
    t = draw(labels_for(scores))
    return onehot(t, scores.shape[-1], scores.dtype) if draw(st.booleans()) else t


@st.composite
def probabilities_case(draw: st.DrawFn, dtype: type) -> object:
    """Probability rows y (N, C) (exact zeros included) and labels or one-hot t."""
    y = draw(probabilities(dtype))
    return _case(y, draw(_targets(y)))


@st.composite
def logits_targets_case(draw: st.DrawFn, dtype: type, one_dim: bool | None = None) -> object:
    """Logits (C,) or (N, C) of any magnitude and labels or one-hot targets."""
    a = draw(logits(dtype, one_dim=one_dim))
    return _case(a, draw(_targets(a)))


@st.composite
def affine_case(draw: st.DrawFn, dtype: type) -> object:
    """x (N, D) or (N, 1, 1, D), and the layer's W (D, M), b (M,)."""
    n, d, m = draw(st.integers(1, 6)), draw(st.integers(1, 7)), draw(st.integers(1, 5))
    x = draw(arrays(dtype, (n, 1, 1, d) if draw(st.booleans()) else (n, d)))
    return _case(x, init=(draw(arrays(dtype, (d, m))), draw(arrays(dtype, (m,)))))


@st.composite
def mlp_parity_case(draw: st.DrawFn, dtype: type) -> object:
    """A small MLP: init (sizes, activation, weight seed), args (x, integer labels)."""
    sizes, x, t, seed = draw(mlp_case(dtype))
    return _case(x, t, init=(sizes, draw(st.sampled_from(["relu", "sigmoid"])), seed))


@st.composite
def leaky_relu_case(draw: st.DrawFn, dtype: type) -> object:
    """x (N, C) up to +-1e4 (zeros included: the kink) and the layer's negative_slope."""
    x = draw(arrays(dtype, st.tuples(st.integers(0, 5), st.integers(1, 6)), 1e4))
    return _case(x, init=(draw(st.sampled_from([0.0, 0.01, 0.2, 1.0])),))


@st.composite
def leaky_relu_function_case(draw: st.DrawFn, dtype: type) -> object:
    """The same inputs for the function form: the slope goes as a keyword."""
    case = draw(leaky_relu_case(dtype))
    return _case(*case.args, negative_slope=case.init[0])


# ---- input makers of the components table for the CNN (torchref.components) ----------------

@st.composite
def convolution_case(draw: st.DrawFn, dtype: type) -> object:
    """x (N, C, H, W) and the layer's init (W, b, stride, pad): a whole ``conv_case``."""
    c = draw(conv_case(dtype))
    return _case(c["x"], init=(c["W"], c["b"], c["stride"], c["pad"]))


@st.composite
def pooling_case(draw: st.DrawFn, dtype: type, mode: str = "max") -> object:
    """x (N, C, H, W) (ties included) and init (pool_h, pool_w, stride, pad, mode)."""
    c = draw(pool_case(dtype))
    return _case(c["x"], init=(*c["kernel"], c["stride"], c["pad"], mode))


@st.composite
def convnet_parity_case(draw: st.DrawFn, dtype: type) -> object:
    """A small SimpleConvNet: init (constructor kwargs, seed), args (x, integer labels)."""
    c = draw(convnet_case(dtype))
    return _case(c["x"], c["t"], init=(c["kwargs"], c["seed"]))


@st.composite
def dropout_layer_case(draw: st.DrawFn, dtype: type, train: bool = True) -> object:
    """x, init (shared keep-mask, ratio, inverted) and ``train_flg``: a whole ``dropout_case``."""
    x, mask, ratio, _ = draw(dropout_case(dtype))
    return _case(x, init=(mask, ratio, draw(st.booleans())), train_flg=train)


@st.composite
def batchnorm_layer_case(draw: st.DrawFn, dtype: type, train: bool = True) -> object:
    """x, init (gamma, beta, momentum, running_mean, running_var) and ``train_flg``:
    a whole ``batchnorm_case`` (its conditioning by construction)."""
    c = draw(batchnorm_case(dtype))
    return _case(c["x"], init=(c["gamma"], c["beta"], c["momentum"], c["running_mean"],
                               c["running_var"]), train_flg=train)


@st.composite
def optimizer_steps_case(draw: st.DrawFn, dtype: type, optimizer: str = "sgd") -> object:
    """A parameter W (R, C), the gradients of 1 to 6 steps (steps, R, C), and init
    (the hyper-parameters of ``optimizer_kwargs(optimizer)``)."""
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    steps = draw(st.integers(1, 6))
    return _case(draw(arrays(dtype, shape)), draw(arrays(dtype, (steps, *shape))),
                 init=(draw(optimizer_kwargs(optimizer)),))


# ----------------------------------------------------------------------------- IDX files

IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_arrays(draw: st.DrawFn, max_dims: int = 3, max_side: int = 5,
               min_side: int = 0) -> tuple[int, np.ndarray]:
    """(IDX dtype code, array of that dtype in native order), 1 to ``max_dims`` dimensions,
    sizes ``min_side`` to ``max_side`` (0: empty arrays included), values over the dtype's
    whole range."""
    code = draw(st.sampled_from(sorted(IDX_CODES)))
    dtype = np.dtype(IDX_CODES[code]).newbyteorder("=")
    shape = tuple(draw(st.lists(st.integers(min_side, max_side), min_size=1, max_size=max_dims)))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=False, width=8 * dtype.itemsize)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return code, draw(hnp.arrays(dtype, shape, elements=elements))


def idx_bytes(code: int, array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, written out from the format's definition (a helper)."""
    import struct
    head = struct.pack(">BBBB", 0, 0, code, array.ndim)
    head += struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(IDX_CODES[code]).tobytes()


# --- knowledge distillation (parity_tests/test_distillation.py) -----------------------------

#: The temperatures the distillation loss promises to handle, ends included.
TEMPERATURE_RANGE = (0.1, 100.0)

temperatures = st.one_of(st.sampled_from([0.1, 1.0, 2.0, 4.0, 20.0, 100.0]),
                         st.floats(*TEMPERATURE_RANGE))
alphas = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))


@st.composite
def logits_of_shape(draw: st.DrawFn, shape: tuple[int, ...], dtype: type,
                    kinds: tuple[str, ...] = ("unit", "huge", "ties")) -> np.ndarray:
    """Logits of a given shape: unit scale (|x| <= 10), huge (|x| <= 1e4) or one tied value."""
    kind = draw(st.sampled_from(kinds))
    if kind == "ties":
        return np.full(shape, draw(floats(dtype, 1e4)), dtype=dtype)
    return draw(arrays(dtype, shape, 10.0 if kind == "unit" else 1e4))


@st.composite
def distillation_case(draw: st.DrawFn, dtype: type | None = None, max_n: int = 6,
                      max_c: int = 10, one_dim: bool | None = False,
                      kinds: tuple[str, ...] = ("unit", "huge", "ties"),
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(student logits, teacher logits, integer labels, temperature, alpha).

    Student and teacher have the same shape, (N, C) or (C,) when ``one_dim``
    (drawn if None), and are drawn independently (each unit, huge or tied).
    """
    dtype = dtype or draw(dtypes)
    one_dim = draw(st.booleans()) if one_dim is None else one_dim
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    shape = (c,) if one_dim else (n, c)
    s = draw(logits_of_shape(shape, dtype, kinds))
    t = draw(logits_of_shape(shape, dtype, kinds))
    return s, t, draw(labels_for(s)), draw(temperatures), draw(alphas)


@st.composite
def distillation_loss_case(draw: st.DrawFn, dtype: type, layer: bool = False) -> object:
    """A ``distillation_case`` (1-D or 2-D, labels or one-hot) for the components table:
    temperature and alpha as keywords, or as the layer's init when ``layer``.

    float32 draws alpha in [0, min(1, 1/T^2)] (alpha scaled by construction): above
    alpha T^2 = 1 the float32 *total* amplifies the rounding of the KL term by T^2, a
    documented divergence (``torchref.tolerance``); float64 takes every alpha.
    """
    s, t, labels, T, alpha = draw(distillation_case(dtype, one_dim=None))
    if np.dtype(dtype) == np.float32:
        alpha *= min(1.0, 1.0 / T**2)
    target = onehot(labels, s.shape[-1], dtype) if draw(st.booleans()) else labels
    if layer:
        return _case(s, t, target, init=(T, alpha))
    return _case(s, t, target, temperature=T, alpha=alpha)


# ---- layer normalization, attention and the Transformer (a module of their own) -------------
from torchref.testing import _strategies_attention as _attention  # noqa: E402 (uses the above)

attention_case = _attention.attention_case
attention_mask = _attention.attention_mask
block_params = _attention.block_params
grid = _attention.grid
layernorm_case = _attention.layernorm_case
layernorm_rows = _attention.layernorm_rows
mha_case = _attention.mha_case
mha_inputs = _attention.mha_inputs
mha_weights = _attention.mha_weights
positional_encoding_case = _attention.positional_encoding_case
transformer_block_case = _attention.transformer_block_case
transformer_classifier_case = _attention.transformer_classifier_case
