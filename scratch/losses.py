"""Loss functions: mean squared error and cross-entropy.

Shapes: ``y`` is (C,) for one sample or (N, C) for a batch.  Targets ``t`` are
either integer labels, shape () or (N,), with values in [0, C), or rows of y's
own shape (one-hot, or any probability distribution).  Integer labels and
their one-hot encoding give *the same value*: integer labels are turned into
one-hot rows, and every loss is a mean over the batch of a per-sample sum.

Conventions (the course leaves them open; we pick one and test it):

* Reduction: every loss is the **mean over the batch** of a per-sample value,
  so its gradient carries a factor 1/N.  A 1-D input is a batch of one.
* ``mean_squared_error`` is the course's ``0.5 * sum (y - t)^2`` per sample
  (the 1/2 cancels the 2 of the derivative), averaged over the batch.
* ``cross_entropy_error`` takes probabilities.  Instead of the course's
  ``log(y + 1e-7)``, which biases every value, it computes
  ``log(max(y, tiny))`` with ``tiny`` the smallest normal number of y's dtype:
  exact for every probability the dtype can hold in full precision, and a large
  finite value (about 708 in float64, 87.3 in float32) instead of ``inf`` when
  a probability is exactly 0.  Prefer ``softmax_cross_entropy`` on logits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from scratch._arrays import as_float_array, as_onehot, batch_size
from scratch._checks import check_same_shape
from scratch.functions import log_softmax, softmax


def mean_squared_error(y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = (1/N) sum_n 0.5 sum_k (y_nk - t_nk)^2``.

    Shapes: y and t both (K,) or both (N, K).  Gradient: dE/dy = (y - t) / N.
    Returns a 0-d array in y's dtype.
    """
    y = as_float_array(y)
    t = np.asarray(t, dtype=y.dtype)
    check_same_shape("y", y.shape, "t", t.shape)
    return 0.5 * np.sum((y - t) ** 2) / batch_size(y)


def cross_entropy_error(y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = -(1/N) sum_n sum_k t_nk log y_nk`` for probabilities y.

    Shapes: y (C,) or (N, C); t integer labels () / (N,) or rows like y.
    Gradient: dE/dy = -t / (N y).  See the module docstring for how y = 0 is
    handled (``log(max(y, tiny))``, never ``inf``).
    """
    y = as_float_array(y)
    t = as_onehot(y, t)
    logy = np.log(np.maximum(y, np.finfo(y.dtype).tiny))
    return -np.sum(t * logy) / batch_size(y)


def softmax_cross_entropy(logits: ArrayLike, t: ArrayLike) -> np.ndarray:
    """Cross-entropy of ``softmax(logits)``, computed stably through log_softmax.

    ``E = -(1/N) sum_n sum_k t_nk log_softmax(a)_nk``.  Shapes as
    ``cross_entropy_error``.  Gradient (the reason softmax and cross-entropy
    are always paired): dE/da = (softmax(a) - t) / N, for t rows summing to 1.
    Finite for logits of any finite magnitude.
    """
    a = as_float_array(logits)
    t = as_onehot(a, t, "logits", "t")
    return -np.sum(t * log_softmax(a)) / batch_size(a)


# ---- the hand-derived backward of each loss: dout * dE/d(args) -------------------------------

def mean_squared_error_backward(dout: ArrayLike, y: ArrayLike,
                                t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``E = 1/(2N) sum (y - t)^2``  =>  ``dy = dout (y - t) / N``, ``dt = -dy``."""
    y = as_float_array(y)
    dy = dout * (y - np.asarray(t, dtype=y.dtype)) / batch_size(y)
    return dy, -dy


def cross_entropy_error_backward(dout: ArrayLike, y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = -1/N sum t log max(y, tiny)``  =>  ``dy = -dout t / (N y)`` where y >= tiny, else 0
    (below tiny the clamp is constant)."""
    y = as_float_array(y)
    t = as_onehot(y, t)
    tiny = np.finfo(y.dtype).tiny
    return np.where(y >= tiny, -dout * t / (batch_size(y) * np.maximum(y, tiny)),
                    0).astype(y.dtype)


def softmax_cross_entropy_backward(dout: ArrayLike, logits: ArrayLike,
                                   t: ArrayLike) -> np.ndarray:
    """``E = -1/N sum t log_softmax(a)``  =>  ``da = dout (softmax(a) sum_k t_k - t) / N``
    (``(softmax(a) - t) / N`` for rows t summing to 1)."""
    a = as_float_array(logits)
    t = as_onehot(a, t, "logits", "t")
    return dout * (softmax(a) * t.sum(axis=-1, keepdims=True) - t) / batch_size(a)
