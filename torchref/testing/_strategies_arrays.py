"""Strategies of arrays, logits, labels and probabilities (re-exported by
``torchref.testing.strategies``, whose docstring documents them)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchref.parity import Case

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


def case(*args: object, init: tuple = (), dout_edges: bool = False, **kwargs: object) -> Case:
    """``Case(args, init, kwargs)`` from positional args: ``st.builds(case, ...)`` or
    ``arrays(...).map(case)`` turns drawn values into the parity harness's input.
    ``dout_edges``: the harness also puts +inf, -inf and NaN into the upstream gradient."""
    return Case(tuple(args), tuple(init), kwargs, dout_edges)


_case = case    # the name the input makers used before it was public
