"""Batch normalization: standardise every feature over the mini-batch.

Shapes: x (N, D), or (N, C, H, W) flattened to (N, C*H*W) as in the course
(one mean and variance per *activation*; torch's ``BatchNorm2d`` instead
pools each channel over N, H and W).  gamma, beta, running_mean and
running_var are (D,); out has x's shape.

Training (statistics of this batch):

    mu  = (1/N) sum_n x_n                    xc = x - mu
    var = (1/N) sum_n xc_n^2  (biased)       std = sqrt(var + eps)
    xn  = xc / std                           out = gamma * xn + beta

and the running averages used at test time, with the course's ``momentum``
(the weight of the *old* value):

    running_mean <- momentum * running_mean + (1 - momentum) * mu
    running_var  <- momentum * running_var  + (1 - momentum) * var

torch's ``F.batch_norm(momentum=m_t)`` weights the *new* value by m_t, so
``m_t = 1 - momentum`` (torch's 0.1 is the course's 0.9), and it feeds the
*unbiased* variance ``var * N / (N - 1)`` into running_var (it normalises
the batch with the biased one, as here).  After one step the two running
variances differ by exactly ``(1 - momentum) * var / (N - 1)``.
``unbiased_running_var=True`` follows torch.  Evaluation uses the running
statistics: ``out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta``.
The course starts both running statistics at 0 (``nn.BatchNorm1d`` starts
running_var at 1) and uses eps = 1e-6 (it writes ``10e-7``; torch's default
is 1e-5).

Backward (training), from the chain rule through mu and var, which both
depend on every x_n:

    dbeta  = sum_n dout_n                  dgamma = sum_n dout_n * xn_n
    dxn    = gamma * dout
    dx     = (dxn - mean_n(dxn) - xn * mean_n(dxn * xn)) / std

(the two means are what mu and var contribute).  In eval mode the
statistics are constants: ``dx = gamma * dout / sqrt(running_var + eps)``.
Training needs N >= 2: with one sample every xn is 0 and the variance is
undefined (torch refuses it too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np

from scratch._arrays import as_float_array
from scratch._checks import (
    check_batch,
    check_batch_for_training,
    check_dout,
    check_ndim,
    check_positive,
    check_rate,
    check_same_shape,
    forward_cache,
)


class BatchNormalization:
    """Batch normalization over the batch axis, the course's layer (see the module docstring)."""

    def __init__(self, gamma: np.ndarray, beta: np.ndarray, momentum: float = 0.9,
                 running_mean: np.ndarray | None = None,
                 running_var: np.ndarray | None = None, eps: float = 1e-6,
                 unbiased_running_var: bool = False) -> None:
        check_ndim("gamma", np.shape(gamma), (1,))
        check_same_shape("gamma", np.shape(gamma), "beta", np.shape(beta))
        self.gamma, self.beta = gamma, beta
        self.momentum, self.eps = check_rate("momentum", momentum), check_positive("eps", eps)
        self.unbiased_running_var = unbiased_running_var
        dtype = np.result_type(gamma)
        self.running_mean = (np.zeros_like(gamma, dtype=dtype) if running_mean is None
                             else np.array(running_mean, dtype=dtype))
        self.running_var = (np.zeros_like(gamma, dtype=dtype) if running_var is None
                            else np.array(running_var, dtype=dtype))
        self.x_shape: tuple[int, ...] = ()
        self.xn: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.train_flg = True
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = as_float_array(x)
        check_batch("x", x.shape)
        d = self.gamma.shape[0]
        if x.ndim < 2 or x[0].size != d:
            raise ValueError(f"x: expected shape (N, {d}) (or (N, ...) with {d} features "
                             f"per sample) to match gamma, got {x.shape}")
        self.x_shape, self.train_flg = x.shape, train_flg
        x = x.reshape(x.shape[0], -1)
        if train_flg:
            check_batch_for_training(self.x_shape)
            mu = x.mean(axis=0)
            xc = x - mu
            var = (xc * xc).mean(axis=0)
            self.std = np.sqrt(var + self.eps)
            n = x.shape[0]
            run_var = var * (n / (n - 1)) if self.unbiased_running_var else var
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mu
            self.running_var = m * self.running_var + (1 - m) * run_var
        else:
            xc = x - self.running_mean
            self.std = np.sqrt(self.running_var + self.eps)
        self.xn = xc / self.std
        return (self.gamma * self.xn + self.beta).reshape(self.x_shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        forward_cache(self, "xn")
        check_dout(self, np.shape(dout), self.x_shape)
        dout = dout.reshape(dout.shape[0], -1)
        self.dbeta = dout.sum(axis=0)
        self.dgamma = (dout * self.xn).sum(axis=0)
        dxn = self.gamma * dout
        if not self.train_flg:
            return (dxn / self.std).reshape(self.x_shape)
        dx = (dxn - dxn.mean(axis=0) - self.xn * (dxn * self.xn).mean(axis=0)) / self.std
        return dx.reshape(self.x_shape)


@contextlib.contextmanager
def running_stats_kept(layers: Iterable[BatchNormalization]) -> Iterator[None]:
    """Put the layers' running statistics back on exit (a gradient check runs many
    training passes, each of which would update them)."""
    saved = [(layer, layer.running_mean, layer.running_var) for layer in layers]
    try:
        yield
    finally:
        for layer, mean, var in saved:
            layer.running_mean, layer.running_var = mean, var
