"""Per-step layers for sequences (N, T, ...): the same weights at every time step.

* ``TimeAffine(W, b)``: ``ys_t = xs_t W + b`` for every t, i.e. one Affine on
  the (N T, D) matrix of all steps.  Backward: ``dW = X^T dY`` and
  ``db = sum dY`` over all N T rows (the steps share W, so their gradients
  add), ``dxs = dys W^T``.
* ``TimeSoftmaxWithLoss(ignore_index=-100)``: softmax cross-entropy at every
  step, averaged over the steps whose target is not ``ignore_index`` (padding),
  as ``F.cross_entropy(..., ignore_index=)`` with its mean reduction.  With M
  counted steps, ``L = -(1/M) sum_{n,t counted} log softmax(xs_nt)[ts_nt]`` and
  ``dxs_nt = (softmax(xs_nt) - onehot(ts_nt)) / M`` at counted steps, 0 at the
  ignored ones.  When every step is ignored, M = 0 and the loss is 0/0 = nan, as
  in torch, and the gradient is 0 everywhere (torch's too: ignored steps get 0).
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_dout, check_ndim, forward_cache
from scratch._seq_checks import check_time_targets, time_affine_input
from scratch.functions import as_float_array, log_softmax


class TimeAffine:
    """``ys = xs W + b`` at every step: xs (N, T, D), W (D, M), b (M,) -> ys (N, T, M)."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        check_ndim("W", np.shape(W), (2,))
        if np.shape(b) != (np.shape(W)[1],):
            raise ValueError(f"b: expected shape ({np.shape(W)[1]},) to match W "
                             f"{np.shape(W)}, got {np.shape(b)}")
        self.W, self.b = W, b
        self.xs: np.ndarray | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, xs: np.ndarray) -> np.ndarray:
        xs = as_float_array(xs)
        time_affine_input(xs.shape, self.W.shape[0])
        self.xs = xs
        return xs @ self.W + self.b

    def backward(self, dys: np.ndarray) -> np.ndarray:
        xs = forward_cache(self, "xs")
        check_dout(self, np.shape(dys), (*xs.shape[:2], self.W.shape[1]))
        M = self.W.shape[1]
        self.dW = xs.reshape(-1, xs.shape[-1]).T @ np.reshape(dys, (-1, M))
        self.db = np.sum(dys, axis=(0, 1))
        return dys @ self.W.T


class TimeSoftmaxWithLoss:
    """Mean softmax cross-entropy over the counted steps of xs (N, T, C), ts (N, T)."""

    def __init__(self, ignore_index: int = -100) -> None:
        self.ignore_index = int(ignore_index)
        self.xs: np.ndarray | None = None
        self.loss: np.ndarray | None = None

    def forward(self, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        xs, ts = as_float_array(xs), np.asarray(ts)
        check_time_targets(xs.shape, ts, self.ignore_index)
        self.mask = ts != self.ignore_index
        self.ts = np.where(self.mask, ts, 0)            # any valid class at ignored steps
        self.count = int(self.mask.sum())
        logp = log_softmax(xs)
        nll = -np.take_along_axis(logp, self.ts[..., None], axis=-1)[..., 0]
        total = np.sum(nll, where=self.mask)
        with np.errstate(invalid="ignore"):             # 0/0 = nan when every step is ignored
            self.loss = np.asarray(total / xs.dtype.type(self.count), dtype=xs.dtype)
        self.xs, self.logp = xs, logp
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        forward_cache(self, "xs")
        dxs = np.exp(self.logp)                         # softmax, from the cached log-softmax
        np.put_along_axis(dxs, self.ts[..., None],
                          np.take_along_axis(dxs, self.ts[..., None], axis=-1) - 1, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.asarray(dout, dtype=dxs.dtype) / dxs.dtype.type(self.count)
            return np.where(self.mask[..., None], dxs * scale, dxs.dtype.type(0))
