"""Strategies of MLP configurations, optimizer hyper-parameters, dropout and batch norm
(re-exported by ``torchref.testing.strategies``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchref.testing._strategies_arrays import arrays, dtypes


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
