"""Logic gates as perceptrons: ``y = 1 if w1 x1 + w2 x2 + b > 0 else 0``.

AND, NAND and OR are single perceptrons (each splits the plane with one line);
XOR is not linearly separable, so it takes two layers:
``XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2))``.
Inputs are 0/1 scalars or arrays (element-wise); outputs are 0/1 integers.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _perceptron(x1: ArrayLike, x2: ArrayLike, w1: float, w2: float, b: float) -> np.ndarray:
    return (w1 * np.asarray(x1) + w2 * np.asarray(x2) + b > 0).astype(np.int64)


def AND(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """1 only when both inputs are 1: weights (0.5, 0.5), bias -0.7."""
    return _perceptron(x1, x2, 0.5, 0.5, -0.7)


def NAND(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """NOT AND: weights (-0.5, -0.5), bias 0.7 (AND's parameters negated)."""
    return _perceptron(x1, x2, -0.5, -0.5, 0.7)


def OR(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """1 when either input is 1: weights (0.5, 0.5), bias -0.2."""
    return _perceptron(x1, x2, 0.5, 0.5, -0.2)


def XOR(x1: ArrayLike, x2: ArrayLike) -> np.ndarray:
    """1 when exactly one input is 1: a two-layer perceptron, AND(NAND, OR)."""
    return AND(NAND(x1, x2), OR(x1, x2))
