"""Loss functions: mean squared error and cross-entropy.

Shapes: ``y`` is (C,) for one sample or (N, C) for a batch.  Targets ``t`` are
either integer labels, shape () or (N,), with values in [0, C), or rows of y's
own shape (one-hot, or any probability distribution).  Integer labels and
their one-hot encoding give *the same value* on finite scores, and every loss
is a mean over the batch of a per-sample sum.  (A label *selects* its score,
as torch's ``nll_loss`` does, while a row multiplies: with a non-finite score
in another class, labels give a number and one-hot rows ``0 * inf = NaN``,
on both sides as in torch.)  An empty batch (N = 0) is a ``ValueError``.

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
from scratch._checks import check_batch, check_distribution, check_same_shape
from scratch.functions import log_softmax, softmax


def check_distribution_rows(rows: np.ndarray, t_name: str = "t") -> None:
    """Raise ``ValueError`` unless every row of ``rows`` (C,) / (N, C) is a probability
    distribution (``scratch._checks.check_distribution``: >= 0, summing to 1 up to rounding)."""
    if rows.size == 0:
        return
    sums = rows.sum(axis=-1)
    check_distribution(t_name, rows.shape[-1], (float(sums.min()), float(sums.max())),
                       float(rows.min()), float(np.finfo(rows.dtype).eps))


def _picked(scores: np.ndarray, t: ArrayLike) -> np.ndarray | None:
    """``scores[n, t_n]`` for integer labels t (None for rows): the label *selects* its score,
    as torch's ``nll_loss`` / ``cross_entropy`` do, so a non-finite score elsewhere in the row
    does not reach the loss (a one-hot product would give ``0 * inf = NaN``)."""
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.integer):
        return None
    return np.take_along_axis(scores.reshape(-1, scores.shape[-1]),
                              t.reshape(-1, 1).astype(np.intp), axis=-1)


def mean_squared_error(y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = (1/N) sum_n 0.5 sum_k (y_nk - t_nk)^2``.

    Shapes: y and t both (K,) or both (N, K).  Gradient: dE/dy = (y - t) / N.
    Returns a 0-d array in y's dtype.
    """
    y = as_float_array(y)
    t = np.asarray(t, dtype=y.dtype)
    check_same_shape("y", y.shape, "t", t.shape)
    if y.ndim == 2:
        check_batch("y", y.shape)
    return 0.5 * np.sum((y - t) ** 2) / batch_size(y)


def cross_entropy_error(y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = -(1/N) sum_n sum_k t_nk log y_nk`` for probabilities y.

    Shapes: y (C,) or (N, C); t integer labels () / (N,) or rows like y.
    Gradient: dE/dy = -t / (N y).  See the module docstring for how y = 0 is
    handled (``log(max(y, tiny))``, never ``inf``).
    """
    y = as_float_array(y)
    rows = as_onehot(y, t)
    logy = np.log(np.maximum(y, np.finfo(y.dtype).tiny))
    picked = _picked(logy, t)
    return -np.sum(rows * logy if picked is None else picked) / batch_size(y)


def softmax_cross_entropy(logits: ArrayLike, t: ArrayLike) -> np.ndarray:
    """Cross-entropy of ``softmax(logits)``, computed stably through log_softmax.

    ``E = -(1/N) sum_n sum_k t_nk log_softmax(a)_nk``.  Shapes as
    ``cross_entropy_error``.  Gradient (the reason softmax and cross-entropy
    are always paired): dE/da = (softmax(a) - t) / N, for t rows summing to 1
    (any rows: (softmax(a) sum_k t_k - t) / N).  Finite for logits of any finite
    magnitude.  Integer labels select their log-probability (a -inf logit elsewhere
    in the row leaves the loss finite, as in torch); rows multiply (0 * inf = NaN,
    as in torch's probability-target cross-entropy).
    """
    a = as_float_array(logits)
    rows = as_onehot(a, t, "logits", "t")
    logp = log_softmax(a)
    picked = _picked(logp, t)
    return -np.sum(rows * logp if picked is None else picked) / batch_size(a)


# ---- the hand-derived backward of each loss: dout * dE/d(args) -------------------------------

def mean_squared_error_backward(dout: ArrayLike, y: ArrayLike,
                                t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``E = 1/(2N) sum (y - t)^2``  =>  ``dy = dout (y - t) / N``, ``dt = -dy``."""
    y = as_float_array(y)
    dy = dout * (y - np.asarray(t, dtype=y.dtype)) / batch_size(y)
    return dy, -dy


def cross_entropy_error_backward(dout: ArrayLike, y: ArrayLike, t: ArrayLike) -> np.ndarray:
    """``E = -1/N sum t log max(y, tiny)``  =>  ``dy = -dout t / (N y)`` where y >= tiny, else 0
    (below tiny the clamp is constant).  Integer labels select (``-dout`` at the label, 0
    elsewhere, as ``nll_loss``); rows multiply."""
    y = as_float_array(y)
    rows = as_onehot(y, t)
    tiny = np.finfo(y.dtype).tiny
    dlogy = -dout * rows if np.asarray(t).dtype.kind == "f" else np.where(rows != 0, -dout, 0)
    return np.where(y >= tiny, dlogy / (batch_size(y) * np.maximum(y, tiny)), 0).astype(y.dtype)


def softmax_cross_entropy_backward(dout: ArrayLike, logits: ArrayLike,
                                   t: ArrayLike) -> np.ndarray:
    """``E = -1/N sum t log_softmax(a)``  =>  ``da = dout (softmax(a) sum_k t_k - t) / N``
    (``(softmax(a) - t) / N`` for rows t summing to 1)."""
    a = as_float_array(logits)
    t = as_onehot(a, t, "logits", "t")
    return dout * (softmax(a) * t.sum(axis=-1, keepdims=True) - t) / batch_size(a)
