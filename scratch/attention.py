"""Scaled dot-product attention, multi-head attention and the sinusoidal positional encoding.

Scaled dot-product attention (Vaswani et al. 2017), for queries q (N, ..., Tq, d),
keys k (N, ..., Tk, d) and values v (N, ..., Tk, dv)::

    S = q k^T / sqrt(d)                       scores         (N, ..., Tq, Tk)
    S[~mask] = -inf                           masked keys get weight 0
    P = softmax(S) along the keys             attention weights, rows sum to 1
    out = P v                                 (N, ..., Tq, dv)

``mask`` is boolean, True where a query may attend to a key (PyTorch's
convention for ``F.scaled_dot_product_attention``; ``nn.MultiheadAttention``'s
boolean ``attn_mask`` means the opposite, True = *not* allowed), broadcastable
to (N, ..., Tq, Tk), e.g. (Tq, Tk) for one mask for the whole batch.  A query
row with no allowed key has no softmax (0/0): it is a ``ValueError`` naming
``mask`` (torch 2.13 returns zeros for such a row instead).

Numerical edge: the scores are not bounded (|q| |k| can be 1e3 and more, where
``exp`` overflows: above 88.7 in float32, 709.8 in float64).  The softmax
subtracts the row max over the *allowed* keys first, so every exponent is <= 0
and the largest term is exactly 1 (the same argument as ``scratch.functions.softmax``).
Non-finite inputs propagate as in torch: a +inf score makes its row NaN,
a -inf score gets weight 0, a row whose scores are *all* -inf (from the data,
e.g. q = inf) gets weights 0 and output 0 (torch's "safe softmax"; a row the
*mask* empties is the error above), and a NaN in v reaches every output that
multiplies it (also with weight 0: 0 * NaN = NaN).

The Transformer block built from these is at the end of this module.

Backward (``scaled_dot_product_attention_backward``), with s = 1/sqrt(d) and
dout = dL/d out::

    dv = P^T dout                       each value collects the weight it was given
    dP = dout v^T
    dS = P * (dP - rowsum(dP * P))      the softmax Jacobian, row by row
    dq = s dS k                         dk = s dS^T q

(masked entries have P = 0, so dS = 0 there and nothing flows to them).
"""

from __future__ import annotations

import numpy as np

from scratch._checks import forward_cache
from scratch._checks_attention import (
    check_attention_args,
    check_block_params,
    check_dropout_ratio,
    check_mha_inputs,
    check_mha_params,
    check_positive_int,
    check_some_key_allowed,
)
from scratch.dropout import Dropout
from scratch.layernorm import LayerNormalization

MHA_PARAMS = ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")


def _flat(x: np.ndarray) -> np.ndarray:
    """(N, T, E) -> (N * T, E): every token a row, so ``_flat(x).T @ _flat(g)`` is the
    weight gradient summed over batch and time in one matrix product."""
    return x.reshape(-1, x.shape[-1])


def _check(q: np.ndarray, k: np.ndarray, v: np.ndarray,
           mask: np.ndarray | None) -> np.ndarray | None:
    mask = None if mask is None else np.asarray(mask)
    scores = check_attention_args(q.shape, k.shape, v.shape,
                                  None if mask is None else mask.shape,
                                  mask is None or mask.dtype == np.bool_)
    if mask is not None:
        check_some_key_allowed(int(np.sum(~np.broadcast_to(mask, scores).any(axis=-1))), scores)
    return mask


def _attention_weights(q: np.ndarray, k: np.ndarray, mask: np.ndarray | None = None
                      ) -> np.ndarray:
    """P = softmax(q k^T / sqrt(d)) over the allowed keys (see the module docstring)."""
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    scores = (q @ np.swapaxes(k, -1, -2)) * scale
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(top == -np.inf, 0, top))   # a row of -inf scores: all 0
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total == 0, 1, total)


def scaled_dot_product_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                                 mask: np.ndarray | None = None) -> np.ndarray:
    """``softmax(q k^T / sqrt(d)) v`` with an optional boolean ``mask`` (True = allowed).

    q (N, ..., Tq, d), k (N, ..., Tk, d), v (N, ..., Tk, dv) -> (N, ..., Tq, dv).
    """
    mask = _check(q, k, v, mask)
    return _attention_weights(q, k, mask) @ v


def _backward_from_weights(dout: np.ndarray, q: np.ndarray, k: np.ndarray,
                                    v: np.ndarray, p: np.ndarray
                                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) given the attention weights P of the forward pass (module docstring)."""
    scale = q.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    dv = np.swapaxes(p, -1, -2) @ dout
    dp = dout @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return (ds @ k) * scale, (np.swapaxes(ds, -1, -2) @ q) * scale, dv


def scaled_dot_product_attention_backward(
        dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
        mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) of ``scaled_dot_product_attention(q, k, v, mask)`` for the upstream
    gradient ``dout`` (N, ..., Tq, dv): the formulas of the module docstring (P recomputed)."""
    mask = _check(q, k, v, mask)
    scores = (*q.shape[:-1], k.shape[-2])
    if np.shape(dout) != (*scores[:-1], v.shape[-1]):
        raise ValueError(f"dout: expected shape {(*scores[:-1], v.shape[-1])} (the shape of "
                         f"the attention output), got {np.shape(dout)}")
    return _backward_from_weights(dout, q, k, v, _attention_weights(q, k, mask))


class MultiHeadAttention:
    """Multi-head attention: H heads of scaled dot-product attention on projections.

    Parameters: Wq, Wk, Wv, Wo (E, E) stored (in, out) as every course weight, bq, bk,
    bv, bo (E,); ``num_heads`` H divides E, each head has dh = E / H features::

        Q = query Wq + bq,  K = key Wk + bk,  V = value Wv + bv      (N, T, E)
        head h takes features h dh ... (h + 1) dh - 1 of Q, K, V      (N, H, T, dh)
        O = concat_h scaled_dot_product_attention(Q_h, K_h, V_h, mask)
        out = O Wo + bo                                               (N, Tq, E)

    (``nn.MultiheadAttention(E, H, batch_first=True)``; its ``in_proj_weight``
    (3E, E) stacks Wq^T, Wk^T, Wv^T: ``torchref.convert`` moves them.)

    ``forward(query, key, value, mask=None)``: query (N, Tq, E), key and value
    (N, Tk, E); ``mask`` boolean, True = allowed, (Tq, Tk) or (N, Tq, Tk), the same
    for every head.  ``backward(dout)`` returns ``(dquery, dkey, dvalue)`` and sets
    ``dWq`` ... ``dbo``.  Self-attention passes one array x as query, key and value:
    x then influences the output along three paths, so its gradient is the *sum*
    ``dquery + dkey + dvalue``, which the caller forms (the layer cannot know that
    the three arguments were one array).

    Backward, per projection (dO from the attention backward, heads merged)::

        dbo = sum_{n,t} dout     dWo = O^T dout      dO = dout Wo^T
        dWq = query^T dQ         dbq = sum_{n,t} dQ  dquery = dQ Wq^T   (same for k, v)
    """

    def __init__(self, Wq: np.ndarray, Wk: np.ndarray, Wv: np.ndarray, Wo: np.ndarray,
                 bq: np.ndarray, bk: np.ndarray, bv: np.ndarray, bo: np.ndarray,
                 num_heads: int) -> None:
        arrays = dict(zip(MHA_PARAMS, (Wq, Wk, Wv, Wo, bq, bk, bv, bo), strict=True))
        self.embed_dim = check_mha_params({n: np.shape(a) for n, a in arrays.items()},
                                          num_heads)
        self.num_heads = num_heads
        for name, value in arrays.items():
            setattr(self, name, value)
            setattr(self, f"d{name}", None)
        self.cache: tuple | None = None

    def _split(self, x: np.ndarray) -> np.ndarray:
        """(N, T, E) -> (N, H, T, dh)."""
        n, t, e = x.shape
        return x.reshape(n, t, self.num_heads, e // self.num_heads).transpose(0, 2, 1, 3)

    @staticmethod
    def _merge(x: np.ndarray) -> np.ndarray:
        """(N, H, T, dh) -> (N, T, E)."""
        n, h, t, dh = x.shape
        return x.transpose(0, 2, 1, 3).reshape(n, t, h * dh)

    def forward(self, query: np.ndarray, key: np.ndarray, value: np.ndarray,
                mask: np.ndarray | None = None) -> np.ndarray:
        mask = None if mask is None else np.asarray(mask)
        check_mha_inputs(self.embed_dim, query.shape, key.shape, value.shape,
                         None if mask is None else mask.shape,
                         mask is None or mask.dtype == np.bool_)
        if mask is not None:
            mask = mask[:, None] if mask.ndim == 3 else mask    # (N, 1, Tq, Tk): every head
        q = self._split(query @ self.Wq + self.bq)
        k = self._split(key @ self.Wk + self.bk)
        v = self._split(value @ self.Wv + self.bv)
        mask = _check(q, k, v, mask)
        p = _attention_weights(q, k, mask)
        o = self._merge(p @ v)
        self.cache = (query, key, value, q, k, v, p, o)
        return o @ self.Wo + self.bo

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query, key, value, q, k, v, p, o = forward_cache(self, "cache")
        if dout.shape != query.shape:
            raise ValueError(f"dout: expected shape {query.shape} (the shape of "
                             f"MultiHeadAttention.forward's output), got {dout.shape}")
        self.dbo = dout.sum(axis=(0, 1))
        self.dWo = _flat(o).T @ _flat(dout)
        dq, dk, dv = (self._merge(g) for g in _backward_from_weights(
            self._split(dout @ self.Wo.T), q, k, v, p))
        grads = []
        for name, x, g in (("q", query, dq), ("k", key, dk), ("v", value, dv)):
            setattr(self, f"dW{name}", _flat(x).T @ _flat(g))
            setattr(self, f"db{name}", g.sum(axis=(0, 1)))
            grads.append(g @ getattr(self, f"W{name}").T)
        return grads[0], grads[1], grads[2]


def positional_encoding(T: int, E: int, dtype: type = np.float64) -> np.ndarray:
    """The sinusoidal table (T, E) of "Attention is all you need", added to the embeddings::

        PE[t, 2i]     = sin(t / 10000^(2i / E))
        PE[t, 2i + 1] = cos(t / 10000^(2i / E))

    Each pair of columns turns at its own frequency, from 1 rad per step (i = 0) down
    to 1/10000, so every position gets a distinct pattern and ``PE[t + s]`` is a fixed
    rotation of ``PE[t]`` for every t.  Computed in float64, then cast to ``dtype``;
    an odd E keeps the last sine column.  No parameters, no gradient.
    """
    check_positive_int("T", T)
    check_positive_int("E", E)
    pos = np.arange(T, dtype=np.float64)[:, None]
    freq = 10000.0 ** (-np.arange(0, E, 2, dtype=np.float64) / E)
    pe = np.zeros((T, E))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq[: E // 2])
    return pe.astype(dtype)


# ---- the Transformer block (post-norm) --------------------------------------------------
# The Transformer block (post-norm), as the reference text writes it.
#
# ::
#
#     attention = MultiHeadAttention(query, key, value, mask)
#     x   = dropout(norm1(attention + query))         add & norm, then dropout
#     ff  = relu(x W1 + b1) W2 + b2                   the feed-forward, E -> fE -> E
#     out = dropout(norm2(ff + x))                    add & norm, then dropout
#
# with f = ``forward_expansion`` (W1 (E, fE), W2 (fE, E), stored (in, out)) and two
# ``LayerNormalization`` over the features.  Dropout is the inverted one
# (``scratch.dropout.Dropout(inverted=True)``, as ``nn.Dropout``): kept units are
# scaled by 1/(1 - p) in training, nothing happens at test time.
#
# Where torch's ``nn.TransformerEncoderLayer(norm_first=False)`` differs: it drops the
# sub-layer outputs *before* each residual add and once more inside the feed-forward
# (``norm1(x + drop(sa(x)))``, ``norm2(x + drop(W2 drop(relu(x W1))))``).  With
# dropout 0, or at test time, the two blocks are the same function (the parity
# tests compare them there); with dropout they are different networks.
#
# Backward, in reverse (each line one of the layers' own backward)::
#
#     d = norm2.backward(dropout2.backward(dout))    dL/d(ff + x)
#     dx = d + (relu'(x W1 + b1) * (d W2^T)) W1^T    residual + feed-forward path
#     dW2 = h^T d, db2 = sum d, dW1 = x^T dh, db1 = sum dh   (h the relu output)
#     d = norm1.backward(dropout1.backward(dx))      dL/d(attention + query)
#     dquery, dkey, dvalue = attention.backward(d);  dquery += d   (the residual)

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
        # relu' selects as torch's threshold_backward: 0 where h <= 0 (no inf * 0 = NaN),
        # the gradient itself elsewhere, NaN h included
        dh = np.where(h <= 0, 0, d @ p["W2"].T)
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
