"""Optimizers with the course's interface: ``update(params, grads)``.

``params`` and ``grads`` are dicts of arrays with the same keys; ``update``
changes the arrays in ``params`` in place (the model holds the same arrays).
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_positive


def check_grads(params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
    """Raise ``ValueError`` when grads lacks a parameter or a shape differs."""
    missing = sorted(set(params) - set(grads))
    if missing:
        raise ValueError(f"grads: missing entries for parameters {missing}")
    for key, p in params.items():
        if np.shape(grads[key]) != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape}, "
                             f"got {np.shape(grads[key])}")


class SGD:
    """Stochastic gradient descent: ``W <- W - lr * dL/dW`` for every parameter."""

    def __init__(self, lr: float = 0.01) -> None:
        check_positive("lr", lr)
        self.lr = lr

    def update(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        check_grads(params, grads)
        for key, p in params.items():
            p -= self.lr * grads[key]


# name -> class, for command-line choices (scripts/train.py --optimizer).
OPTIMIZERS: dict[str, type] = {"sgd": SGD}
