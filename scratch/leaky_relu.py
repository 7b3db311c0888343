"""Leaky ReLU: the worked example of adding a component (see docs/README_harness.md).

Formula, with a small slope a (``negative_slope``) for negative inputs:

    f(x) = x        if x > 0
    f(x) = a x      otherwise

Shapes: any; the output has x's shape and float dtype.

Hand-derived gradient: f'(x) = 1 for x > 0 and a for x < 0.  At the kink
x = 0 the derivative does not exist; we take ``a`` there, as torch does
(``F.leaky_relu``'s backward tests ``x > 0``).  The parity test finds this
edge by itself: hypothesis tries x = 0 early, so writing ``x >= 0`` fails.
Backward (layer): ``dx = dout * (1 if x > 0 else a)``, a new array.

Why: a plain ReLU passes no gradient for x < 0, so a unit pushed there can
stop learning ("dying ReLU"); the slope a keeps a small gradient flowing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scratch._arrays import as_float_array
from scratch._checks import check_dout, check_finite, forward_cache


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """``x`` where x > 0, ``negative_slope * x`` elsewhere, in x's float dtype."""
    check_finite("negative_slope", negative_slope)
    x = as_float_array(x)
    return np.where(x > 0, x, negative_slope * x).astype(x.dtype, copy=False)


def leaky_relu_grad(x: ArrayLike, negative_slope: float = 0.01) -> np.ndarray:
    """Derivative: 1 where x > 0, ``negative_slope`` elsewhere (the kink included)."""
    check_finite("negative_slope", negative_slope)
    x = as_float_array(x)
    return np.where(x > 0, 1.0, negative_slope).astype(x.dtype)


class LeakyRelu:
    """The layer: forward caches the slope of every entry, backward multiplies dout by it."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        check_finite("negative_slope", negative_slope)
        self.negative_slope = negative_slope
        self.slope: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.slope = leaky_relu_grad(x, self.negative_slope)
        return leaky_relu(x, self.negative_slope)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        slope = forward_cache(self, "slope")
        check_dout(self, np.shape(dout), slope.shape)
        return dout * slope
