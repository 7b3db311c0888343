"""Every hypothesis strategy of the parity suite, in one module.

Shapes and values are drawn by construction: a strategy for labels first draws
the number of classes and then labels below it, never a filter that throws
most draws away.  Values include the numerical edges (logits up to +-1e4, ties,
single samples) because ``floats`` shrinks towards and samples boundaries.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (np.float32, np.float64)

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
             max_layers: int = 3, max_n: int = 5) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """A small MLP configuration: (sizes, x (N, D), integer labels (N,), weight seed)."""
    dtype = dtype or draw(dtypes)
    sizes = draw(st.lists(st.integers(1, max_width), min_size=2, max_size=max_layers + 1))
    sizes[-1] = max(sizes[-1], 2)   # at least two classes
    n = draw(st.integers(1, max_n))
    x = draw(arrays(dtype, (n, sizes[0]), 3.0))
    t = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, sizes[-1] - 1)))
    seed = draw(st.integers(0, 2**32 - 1))
    return sizes, x, t, seed


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
