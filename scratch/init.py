"""Weight initialisation: the scale of the first random weights.

A layer computes ``z = sum_i w_i x_i`` over ``fan_in`` inputs.  With independent
weights of variance ``s^2`` and inputs of second moment ``E[x^2]``,
``Var(z) = fan_in s^2 E[x^2]``: to keep activations from shrinking or blowing
up through the layers, ``s^2`` must scale like ``1 / fan_in``.

* Xavier / Glorot (2010), for sigmoid / tanh / linear units, in the course's
  form: ``s = sqrt(1 / fan_in)``.
* He / Kaiming (2015), for relu units, which zero half their inputs and so
  halve ``E[x^2]``: ``s = sqrt(2 / fan_in)``.

``fan_in`` is what one output unit sums over: ``D`` for an Affine W of shape
(D, M); ``C * FH * FW`` for a convolution filter bank W of shape (FN, C, FH, FW).
"""

from __future__ import annotations

import numpy as np


def init_std(activation: str, fan_in: int, weight_init_std: float | str) -> float:
    """Standard deviation of the initial weights of a layer with ``fan_in`` inputs.

    ``"he"`` (or ``"auto"`` with relu): sqrt(2 / fan_in).  ``"xavier"`` (or
    ``"auto"`` with any other activation): sqrt(1 / fan_in).  A number is used
    as it is (the course's ``weight_init_std=0.01``).
    """
    if isinstance(weight_init_std, str):
        scheme = weight_init_std.lower()
        if scheme == "auto":
            scheme = "he" if activation == "relu" else "xavier"
        if scheme == "he":
            return float(np.sqrt(2.0 / fan_in))
        if scheme == "xavier":
            return float(np.sqrt(1.0 / fan_in))
        raise ValueError(f"weight_init_std: expected a number, 'auto', 'he' or 'xavier', "
                         f"got {weight_init_std!r}")
    return float(weight_init_std)


def init_weight(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int,
                activation: str, weight_init_std: float | str,
                dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Normal weights of ``shape`` with ``init_std(activation, fan_in, weight_init_std)``."""
    std = init_std(activation, fan_in, weight_init_std)
    return (std * rng.standard_normal(shape)).astype(dtype)
