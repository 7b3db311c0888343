"""Numerical differentiation and gradient descent.

Central differences: ``f'(x) ~ (f(x + h) - f(x - h)) / (2h)``.  Its error is
``h^2 f'''(x) / 6`` (truncation) plus about ``eps |f| / h`` (rounding of f), so
h = 1e-4 balances the two in float64 at roughly 1e-8 to 1e-10 relative error.
The forward difference ``(f(x+h) - f(x)) / h`` is only O(h) accurate.

``gradcheck`` (defined in ``scratch.gradcheck``, exported here) uses the same
central differences to check a hand-derived gradient, a layer's backward or a
model's backprop, entry by entry or along random directions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from scratch._checks import check_positive
from scratch.gradcheck import GradcheckEntry, GradcheckError, GradcheckResult, gradcheck

__all__ = ["GradcheckEntry", "GradcheckError", "GradcheckResult", "gradcheck", "gradient_descent",
           "numerical_diff", "numerical_gradient", "params_numerical_gradient"]


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Derivative of a scalar function at x by central differences."""
    check_positive("h", h)
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[np.ndarray], float], x: ArrayLike,
                       h: float = 1e-4) -> np.ndarray:
    """Gradient of scalar ``f`` at ``x`` (any shape) by central differences.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2h)`` for every index i: two
    calls of f per entry.  ``f`` receives a float64 *copy* of x with one entry
    perturbed; the caller's array is never modified.  Returns float64, x's shape.
    """
    check_positive("h", h)
    xc = np.array(x, dtype=np.float64)   # a copy, whatever x was
    grad = np.zeros_like(xc)
    for idx in np.ndindex(xc.shape):
        orig = xc[idx]
        xc[idx] = orig + h
        f_plus = float(f(xc))
        xc[idx] = orig - h
        f_minus = float(f(xc))
        xc[idx] = orig
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def params_numerical_gradient(loss: Callable[[], float], params: dict[str, np.ndarray],
                              h: float = 1e-4) -> dict[str, np.ndarray]:
    """``numerical_gradient`` of a model's ``loss()`` with respect to each array of ``params``.

    A model's layers hold the very arrays of its ``params``: each perturbed
    value is written into the array in place, ``loss()`` re-runs the model, and
    the array is restored afterwards (also on error).  Keyed like ``params``.
    """
    grads = {}
    for key, value in params.items():
        saved = value.copy()

        def loss_at(w: np.ndarray, value: np.ndarray = value) -> float:
            value[...] = w
            return float(loss())
        try:
            grads[key] = numerical_gradient(loss_at, saved, h)
        finally:
            value[...] = saved
    return grads


def gradient_descent(f: Callable[[np.ndarray], float], init_x: ArrayLike, lr: float = 0.01,
                     step_num: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Minimise f by ``x <- x - lr * grad f(x)``, with numerical gradients.

    Returns ``(x, history)``: the final point and the (step_num, *x.shape)
    array of the points visited before each step.
    """
    check_positive("lr", lr)
    if step_num < 0:
        raise ValueError(f"step_num: expected a non-negative integer, got {step_num!r}")
    x = np.array(init_x, dtype=np.float64)
    history = np.empty((step_num, *x.shape))
    for i in range(step_num):
        history[i] = x
        x = x - lr * numerical_gradient(f, x)
    return x, history
