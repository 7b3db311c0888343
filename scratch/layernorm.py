"""Layer normalization: standardise every sample over its features (the last axis).

Batch normalization (``scratch.batchnorm``) averages each feature over the
batch; layer normalization averages each sample (each token of a sequence)
over its own D features, so it needs no batch statistics, behaves the same in
training and at test time, and works for a batch of one.  Shapes: x (..., D),
gamma and beta (D,), out x's shape.

    mu  = (1/D) sum_d x_d              xc  = x - mu
    var = (1/D) sum_d xc_d^2 (biased)  std = sqrt(var + eps)
    xn  = xc / std                     out = gamma * xn + beta

(``torch.nn.LayerNorm(D, eps=1e-5)``: the same biased variance and eps inside
the square root.)

Backward.  gamma and beta act per feature, so their gradients sum over every
leading axis (all samples and time steps)::

    dbeta  = sum_{...} dout            dgamma = sum_{...} dout * xn

For x, mu and var depend on every feature of the row.  With dxn = gamma * dout,
d xn_i / d x_j = (delta_ij - 1/D - xn_i xn_j / D) / std, hence, per row,

    dx = (dxn - mean_d(dxn) - xn * mean_d(dxn * xn)) / std

the same three terms as batch normalization, with the means taken over the
features instead of the batch.  Numerical edge: a constant row has var = 0,
so std = sqrt(eps) and xn = 0 exactly: the output is beta and dx stays finite
(eps > 0 is required).  A non-finite value poisons its own row only (NaN), as
in torch.
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_dout, forward_cache
from scratch._checks_attention import check_last_axis, check_layernorm_params
from scratch.functions import as_float_array


class LayerNormalization:
    """Layer normalization over the last axis; see the module docstring.

    Parameters
    ----------
    gamma, beta : (D,) scale and shift (``nn.LayerNorm``'s ``weight`` and ``bias``).
    eps : added to the variance inside the square root (torch's default 1e-5).
    """

    def __init__(self, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> None:
        check_layernorm_params(np.shape(gamma), np.shape(beta), eps)
        self.gamma, self.beta, self.eps = gamma, beta, eps
        self.xn: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x)
        check_last_axis("x", x.shape, self.gamma.shape[0])
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)
        self.std = np.sqrt(var + x.dtype.type(self.eps))
        self.xn = xc / self.std
        return self.gamma * self.xn + self.beta

    def backward(self, dout: np.ndarray) -> np.ndarray:
        xn = forward_cache(self, "xn")
        check_dout(self, np.shape(dout), xn.shape)
        lead = tuple(range(dout.ndim - 1))
        self.dbeta = dout.sum(axis=lead)
        self.dgamma = (dout * xn).sum(axis=lead)
        dxn = self.gamma * dout
        return (dxn - dxn.mean(axis=-1, keepdims=True)
                - xn * (dxn * xn).mean(axis=-1, keepdims=True)) / self.std
