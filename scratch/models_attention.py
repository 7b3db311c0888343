"""A small Transformer classifier: an image read as a sequence of rows.

The 8x8 digits become 8 tokens of 8 pixels (row t is token t)::

    h      = x W_in + b_in + PE            (N, T, F) -> (N, T, E), PE the sinusoidal table
    h      = TransformerBlock(h, h, h)     self-attention, add & norm, feed-forward, add & norm
    pooled = mean_t h                      (N, E)
    logits = pooled W_out + b_out          (N, classes), then SoftmaxWithLoss

The course's model interface (``params``, ``predict``, ``loss``, ``gradient``,
``numerical_gradient``, ``accuracy``, ``last_layer``), so ``scratch.training.Trainer``
and ``torchref.lockstep`` drive it like the MLP.  ``params`` keys: ``W_in, b_in``,
the block's (``Wq ... bo, gamma1, beta1, W1, b1, W2, b2, gamma2, beta2``), ``W_out,
b_out``; every W stored (in, out).

Backward of the pieces around the block: the mean over T spreads ``dpooled / T``
to every token; the block's self-attention gradient is ``dquery + dkey + dvalue``
(one array was all three); the positional table is a constant (no gradient).
"""

from __future__ import annotations

import numpy as np

from scratch._checks_attention import check_positive_int
from scratch.attention import TransformerBlock, _flat, positional_encoding, transformer_block_params
from scratch.gradient import params_numerical_gradient
from scratch.layers import SoftmaxWithLoss
from scratch.losses import as_onehot


def _sequence_input(x: np.ndarray, seq_len: int, input_dim: int) -> np.ndarray:
    """x (N, T, F), or images (N, 1, T, F) (one channel) -> (N, T, F); else ``ValueError``."""
    shape = np.shape(x)
    if len(shape) == 4 and shape[1] == 1:
        shape = (shape[0], *shape[2:])
    if len(shape) != 3 or shape[1:] != (seq_len, input_dim):
        raise ValueError(f"x: expected shape (N, {seq_len}, {input_dim}) or "
                         f"(N, 1, {seq_len}, {input_dim}), got {np.shape(x)}")
    return np.reshape(x, shape)


class TransformerClassifier:
    """Linear embedding + positional encoding, one Transformer block, mean-pool, Affine.

    Parameters
    ----------
    seq_len, input_dim : T and F of the input sequences (8 and 8 for the digits).
    embed_dim, num_heads, forward_expansion : E, H (dividing E) and the feed-forward's
        widening (hidden width forward_expansion * E).
    n_classes : output classes.  dropout : the block's drop probability.
    seed : weight initialisation (N(0, 1/fan_in)) and then the dropout masks.
    """

    def __init__(self, seq_len: int, input_dim: int, embed_dim: int = 32, num_heads: int = 4,
                 forward_expansion: int = 2, n_classes: int = 10, dropout: float = 0.0,
                 seed: int | None = None, dtype: type = np.float64) -> None:
        for name, value in (("seq_len", seq_len), ("input_dim", input_dim),
                            ("n_classes", n_classes)):
            check_positive_int(name, value)
        self.seq_len, self.input_dim, self.embed_dim = seq_len, input_dim, embed_dim
        self.num_heads, self.forward_expansion = num_heads, forward_expansion
        self.n_classes, self.dropout = n_classes, dropout
        rng = np.random.default_rng(seed)
        block = transformer_block_params(embed_dim, forward_expansion, rng, dtype)
        self.params: dict[str, np.ndarray] = {
            "W_in": (rng.standard_normal((input_dim, embed_dim)) / np.sqrt(input_dim)
                     ).astype(dtype),
            "b_in": np.zeros(embed_dim, dtype=dtype), **block,
            "W_out": (rng.standard_normal((embed_dim, n_classes)) / np.sqrt(embed_dim)
                      ).astype(dtype),
            "b_out": np.zeros(n_classes, dtype=dtype)}
        self.block = TransformerBlock({k: self.params[k] for k in block}, num_heads, dropout,
                                      seed=rng)
        self.pe = positional_encoding(seq_len, embed_dim, dtype)
        self.last_layer = SoftmaxWithLoss()
        self.cache: tuple | None = None

    def options(self) -> dict:
        """The constructor arguments (no seed, no dtype): what ``torchref.convert`` copies."""
        return {"seq_len": self.seq_len, "input_dim": self.input_dim,
                "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "forward_expansion": self.forward_expansion, "n_classes": self.n_classes,
                "dropout": self.dropout}

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Logits (N, n_classes); ``train_flg`` switches the block's dropout on."""
        x = _sequence_input(x, self.seq_len, self.input_dim)
        p = self.params
        h = x @ p["W_in"] + p["b_in"] + self.pe
        h = self.block.forward(h, h, h, None, train_flg)
        pooled = h.mean(axis=1)
        self.cache = (x, pooled)
        return pooled @ p["W_out"] + p["b_out"]

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Mean softmax cross-entropy of the logits against t (integer labels or one-hot)."""
        return self.last_layer.forward(self.predict(x, train_flg), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t, train_flg=True)`` by backprop, keyed like ``params``."""
        self.loss(x, t, train_flg=True)
        x, pooled = self.cache
        dlogits = self.last_layer.backward(1.0)
        grads = {"W_out": pooled.T @ dlogits, "b_out": dlogits.sum(axis=0)}
        dh = np.repeat((dlogits @ self.params["W_out"].T)[:, None] / x.shape[1], x.shape[1],
                       axis=1)
        dh = sum(self.block.backward(dh))          # query, key and value were one array
        grads.update(self.block.grads())
        grads["W_in"] = _flat(x).T @ _flat(dh)
        grads["b_in"] = dh.sum(axis=(0, 1))
        return {k: grads[k] for k in self.params}

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray,
                           h: float = 1e-4) -> dict[str, np.ndarray]:
        """Central differences of ``loss(x, t, train_flg=True)`` (float64; fix the dropout
        masks first with ``block.dropout1.fixed_mask`` / ``dropout2``)."""
        return params_numerical_gradient(lambda: self.loss(x, t, train_flg=True),
                                         self.params, h)

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of samples whose largest logit (test mode) is the target class."""
        y = self.predict(x, train_flg=False)
        return float(np.mean(y.argmax(axis=-1) == as_onehot(y, t).argmax(axis=-1)))
