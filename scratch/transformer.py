"""The Transformer block (post-norm), as the reference text writes it.

::

    attention = MultiHeadAttention(query, key, value, mask)
    x   = dropout(norm1(attention + query))         add & norm, then dropout
    ff  = relu(x W1 + b1) W2 + b2                   the feed-forward, E -> fE -> E
    out = dropout(norm2(ff + x))                    add & norm, then dropout

with f = ``forward_expansion`` (W1 (E, fE), W2 (fE, E), stored (in, out)) and two
``LayerNormalization`` over the features.  Dropout is the inverted one
(``scratch.dropout.Dropout(inverted=True)``, as ``nn.Dropout``): kept units are
scaled by 1/(1 - p) in training, nothing happens at test time.

Where torch's ``nn.TransformerEncoderLayer(norm_first=False)`` differs: it drops the
sub-layer outputs *before* each residual add and once more inside the feed-forward
(``norm1(x + drop(sa(x)))``, ``norm2(x + drop(W2 drop(relu(x W1))))``).  With
dropout 0, or at test time, the two blocks are the same function (the parity
tests compare them there); with dropout they are different networks.

Backward, in reverse (each line one of the layers' own backward)::

    d = norm2.backward(dropout2.backward(dout))    dL/d(ff + x)
    dx = d + (relu'(x W1 + b1) * (d W2^T)) W1^T    residual + feed-forward path
    dW2 = h^T d, db2 = sum d, dW1 = x^T dh, db1 = sum dh   (h the relu output)
    d = norm1.backward(dropout1.backward(dx))      dL/d(attention + query)
    dquery, dkey, dvalue = attention.backward(d);  dquery += d   (the residual)
"""

from __future__ import annotations

import numpy as np

from scratch._checks_attention import (
    check_block_params,
    check_dropout_ratio,
    check_positive_int,
)
from scratch.attention import MHA_PARAMS, MultiHeadAttention, _flat
from scratch.dropout import Dropout
from scratch.layernorm import LayerNormalization

BLOCK_PARAMS = (*MHA_PARAMS, "gamma1", "beta1", "W1", "b1", "W2", "b2", "gamma2", "beta2")


def transformer_block_params(embed_dim: int, forward_expansion: int = 4,
                             seed: int | np.random.Generator | None = None,
                             dtype: type = np.float64) -> dict[str, np.ndarray]:
    """Initial parameters of a block: weights N(0, 1/fan_in), biases and betas 0, gammas 1."""
    e = check_positive_int("embed_dim", embed_dim)
    f = check_positive_int("forward_expansion", forward_expansion)
    rng = np.random.default_rng(seed)

    def weight(fan_in: int, fan_out: int) -> np.ndarray:
        return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)
    params = {name: weight(e, e) for name in ("Wq", "Wk", "Wv", "Wo")}
    params.update({name: np.zeros(e, dtype=dtype) for name in ("bq", "bk", "bv", "bo")})
    params.update(gamma1=np.ones(e, dtype=dtype), beta1=np.zeros(e, dtype=dtype),
                  W1=weight(e, f * e), b1=np.zeros(f * e, dtype=dtype),
                  W2=weight(f * e, e), b2=np.zeros(e, dtype=dtype),
                  gamma2=np.ones(e, dtype=dtype), beta2=np.zeros(e, dtype=dtype))
    return params


class TransformerBlock:
    """The post-norm Transformer block of the module docstring.

    ``params``: a dict with ``Wq, Wk, Wv, Wo, bq, bk, bv, bo`` (the attention),
    ``gamma1, beta1, gamma2, beta2`` (the two layer norms) and ``W1, b1, W2, b2``
    (the feed-forward); the layers hold these very arrays, so an optimizer updating
    the dict in place updates the block.  ``num_heads`` divides E; ``dropout`` the
    drop probability; ``eps`` of both layer norms; ``seed`` the dropout masks'.

    ``forward(query, key, value, mask=None, train_flg=True)`` -> (N, Tq, E);
    ``backward(dout)`` -> ``(dquery, dkey, dvalue)`` and ``d<name>`` for every
    parameter (self-attention: the caller sums the three, see ``MultiHeadAttention``).
    """

    def __init__(self, params: dict[str, np.ndarray], num_heads: int, dropout: float = 0.0,
                 eps: float = 1e-5, seed: int | np.random.Generator | None = None) -> None:
        check_dropout_ratio(dropout)
        check_block_params({k: np.shape(v) for k, v in params.items()}, num_heads)
        self.attention = MultiHeadAttention(*(params[k] for k in MHA_PARAMS), num_heads)
        self.params, self.num_heads, self.dropout = params, num_heads, dropout
        self.norm1 = LayerNormalization(params["gamma1"], params["beta1"], eps)
        self.norm2 = LayerNormalization(params["gamma2"], params["beta2"], eps)
        rng = np.random.default_rng(seed)
        self.dropout1, self.dropout2 = (Dropout(dropout, inverted=True, seed=rng)
                                        for _ in range(2))
        self.cache: tuple | None = None

    def forward(self, query: np.ndarray, key: np.ndarray, value: np.ndarray,
                mask: np.ndarray | None = None, train_flg: bool = True) -> np.ndarray:
        p = self.params
        attention = self.attention.forward(query, key, value, mask)
        x = self.dropout1.forward(self.norm1.forward(attention + query), train_flg)
        h = np.maximum(x @ p["W1"] + p["b1"], 0)
        ff = h @ p["W2"] + p["b2"]
        self.cache = (x, h)
        return self.dropout2.forward(self.norm2.forward(ff + x), train_flg)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.cache is None:
            raise RuntimeError("TransformerBlock.backward called before forward: call forward "
                               "first (backward uses the 'cache' that forward caches)")
        x, h = self.cache
        if np.shape(dout) != x.shape:
            raise ValueError(f"dout: expected shape {x.shape} (the shape of "
                             f"TransformerBlock.forward's output), got {np.shape(dout)}")
        p = self.params
        d = self.norm2.backward(self.dropout2.backward(dout))
        self.dW2, self.db2 = _flat(h).T @ _flat(d), d.sum(axis=(0, 1))
        dh = (d @ p["W2"].T) * (h > 0)
        self.dW1, self.db1 = _flat(x).T @ _flat(dh), dh.sum(axis=(0, 1))
        dx = d + dh @ p["W1"].T
        d = self.norm1.backward(self.dropout1.backward(dx))
        dquery, dkey, dvalue = self.attention.backward(d)
        for name in MHA_PARAMS:
            setattr(self, f"d{name}", getattr(self.attention, f"d{name}"))
        for i, norm in ((1, self.norm1), (2, self.norm2)):
            setattr(self, f"dgamma{i}", norm.dgamma)
            setattr(self, f"dbeta{i}", norm.dbeta)
        return dquery + d, dkey, dvalue

    def grads(self) -> dict[str, np.ndarray]:
        """Every parameter's gradient after ``backward``, keyed like ``params``."""
        return {k: getattr(self, f"d{k}") for k in BLOCK_PARAMS}
