"""Activation functions and softmax, with their hand-derived derivatives.

All functions take an array of any shape (or a Python scalar) and return an
array of the same shape.  Floating inputs keep their dtype (float32 stays
float32); anything else is computed in float64.

=================  ==============================  ==============================
function           formula                         derivative d f / d x
=================  ==============================  ==============================
step_function      1 if x > 0 else 0               0 (undefined at 0)
sigmoid            1 / (1 + exp(-x))               sigmoid(x) (1 - sigmoid(x))
tanh               (e^x - e^-x) / (e^x + e^-x)     1 - tanh(x)^2
relu               max(0, x)                       0 if x <= 0 else 1 (0 at x = 0,
                                                   1 at NaN, as torch does)
identity_function  x                               1
softmax            exp(x_i) / sum_j exp(x_j)       s_i (delta_ij - s_j)
log_softmax        x_i - log sum_j exp(x_j)        delta_ij - s_j
=================  ==============================  ==============================
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scratch._arrays import as_float_array


def step_function(x: ArrayLike) -> np.ndarray:
    """Heaviside step: 1 where x > 0, else 0, in x's float dtype.

    Its derivative is 0 wherever it exists, which is why networks of step units
    cannot be trained by gradient descent (and why the course moves to sigmoid).
    """
    x = as_float_array(x)
    return (x > 0).astype(x.dtype)


def sigmoid(x: ArrayLike) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for any finite x.

    Numerical edge: ``exp(-x)`` overflows for x < -709 (float64) or x < -88
    (float32).  With ``e = exp(-|x|)``, which is always in (0, 1]:

        x >= 0:  sigmoid(x) = 1 / (1 + e)
        x <  0:  sigmoid(x) = e / (1 + e)     (multiply top and bottom by exp(x))

    Both branches are exact rewrites, and neither can overflow.
    """
    x = as_float_array(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def sigmoid_grad(x: ArrayLike) -> np.ndarray:
    """Derivative of the sigmoid at x: ``s (1 - s)`` with ``s = sigmoid(x)``.

    Derivation: s = (1 + e^-x)^-1, so ds/dx = e^-x / (1 + e^-x)^2
    = s * (e^-x / (1 + e^-x)) = s (1 - s).
    """
    s = sigmoid(x)
    return (1.0 - s) * s


def tanh(x: ArrayLike) -> np.ndarray:
    """Hyperbolic tangent ``(e^x - e^-x) / (e^x + e^-x) = 2 sigmoid(2x) - 1``.

    The activation of the recurrent layers (``scratch.rnn``).  Written with the
    formula, ``e^x`` overflows for x > 709 (float64), giving inf / inf = nan;
    ``np.tanh`` saturates to +-1 instead, as torch does, so we use it.
    """
    x = as_float_array(x)
    return np.tanh(x)


def tanh_grad(x: ArrayLike) -> np.ndarray:
    """Derivative of tanh at x: ``1 - tanh(x)^2``.

    Derivation: tanh = s/c with s = sinh, c = cosh, s' = c, c' = s, so
    d tanh/dx = (c c - s s) / c^2 = 1 - tanh^2.  A layer reuses its cached
    output y = tanh(x): ``dx = dout * (1 - y^2)``.
    """
    y = tanh(x)
    return 1.0 - y * y


def relu(x: ArrayLike) -> np.ndarray:
    """Rectified linear unit ``max(0, x)``."""
    x = as_float_array(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_grad(x: ArrayLike) -> np.ndarray:
    """Derivative of relu: 0 where x <= 0, else 1 (we take 0 at the kink, as torch does).

    Written ``not (x <= 0)`` rather than ``x > 0``: the two differ only at NaN, where
    torch's ``threshold_backward`` (``where(x <= 0, 0, dout)``) passes the gradient on.
    """
    x = as_float_array(x)
    return (~(x <= 0)).astype(x.dtype)


def identity_function(x: ArrayLike) -> np.ndarray:
    """The identity ``f(x) = x`` (the output activation for regression); derivative 1."""
    return as_float_array(x)


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (each row of a batch on its own).

    ``softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)`` with ``m = max_j x_j``
    taken *per row*.  Subtracting m changes nothing mathematically (it cancels
    between top and bottom) but makes every exponent <= 0, so nothing overflows,
    and the largest term is exactly 1, so the sum is >= 1 and never underflows
    to 0.  The often-copied batch version that subtracts one global max and sums
    over the whole batch mixes rows: it is wrong for N > 1.

    Jacobian: d s_i / d x_j = s_i (delta_ij - s_j).
    """
    x = as_float_array(x)
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``log softmax(x)_i = x_i - m - log sum_j exp(x_j - m)``, m the row max.

    Computing ``log(softmax(x))`` instead would give ``log(0) = -inf`` as soon
    as a probability underflows (logits 1e4 apart); this form stays finite for
    every finite input.  Derivative: d/dx_j = delta_ij - softmax(x)_j.
    """
    x = as_float_array(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# ---- the hand-derived backward of softmax and log_softmax: dout -> dL/dx ----------------------

def softmax_backward(dout: ArrayLike, x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``ds_i/dx_j = s_i (delta_ij - s_j)``  =>  ``dx = s * (dout - sum(dout * s))``."""
    s = softmax(x, axis=axis)
    return s * (dout - np.sum(dout * s, axis=axis, keepdims=True))


def log_softmax_backward(dout: ArrayLike, x: ArrayLike, axis: int = -1) -> np.ndarray:
    """``d log s_i / dx_j = delta_ij - s_j``  =>  ``dx = dout - s * sum(dout)``."""
    return dout - softmax(x, axis=axis) * np.sum(dout, axis=axis, keepdims=True)
