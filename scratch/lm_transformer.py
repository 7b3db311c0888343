"""A causal Transformer language model over tokens (characters in ``scripts/train_lm.py``).

    idx (N, T) -> Embedding -> + PE[:T] -> TransformerBlock(mask) x L -> TimeAffine
               -> TimeSoftmaxWithLoss(next idx)

The mask is causal, boolean, True where attention is allowed: ``mask[i, j] = j <= i``
(position i sees itself and the past, never the token it must predict).  Without it
the model would read ``ts[n, t] = xs[n, t + 1]`` off the input and learn nothing.

There is no state: each window of ``T <= context`` tokens is its own context (the
LSTM's truncated BPTT does not apply; the Transformer trains on fixed windows).
``reset_state()`` exists, and does nothing, so a training loop can drive either model.
``generate`` re-reads the last ``context`` tokens for every new token (no key/value cache:
the lesson is the model, not the inference trick).

Backward: the affine's and loss's own backward, then each block's in reverse, where
self-attention's gradient is ``dquery + dkey + dvalue`` (one array was all three); the
positional table and the mask are constants; the embedding accumulates into ``dW``.
No dropout (the blocks are built with ``dropout=0``), so scratch and torch compute the
same function in training.
"""

from __future__ import annotations

import numpy as np

from scratch._checks_attention import check_lm_options, check_positive_int
from scratch.attention import (
    BLOCK_PARAMS,
    TransformerBlock,
    positional_encoding,
    transformer_block_params,
)
from scratch.embedding import Embedding
from scratch.functions import softmax
from scratch.time_layers import TimeAffine, TimeSoftmaxWithLoss


def causal_mask(T: int) -> np.ndarray:
    """(T, T) boolean, True where attention is allowed: query i sees keys 0 ... i."""
    return np.tril(np.ones((check_positive_int("T", T),) * 2, dtype=bool))


def block_key(layer: int, name: str) -> str:
    """The ``params`` key of block ``layer``'s parameter ``name``: ``"block0.Wq"``."""
    return f"block{layer}.{name}"


class TransformerLM:
    """Embedding (V, E), ``num_layers`` post-norm blocks (``num_heads``, feed-forward
    ``forward_expansion * E``) under a causal mask, per-step Affine (E, V).

    ``context``: the longest window (rows of the positional table).  ``params`` keys:
    ``embed_W``, ``block<i>.<name>`` for every ``scratch.attention.BLOCK_PARAMS`` name,
    ``W``, ``b_out``.  Initialisation: embedding N(0, 1/E), block weights N(0, 1/fan_in)
    (``transformer_block_params``), W N(0, 1/E), biases and betas 0, gammas 1.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, num_heads: int = 4,
                 num_layers: int = 2, forward_expansion: int = 4, context: int = 32,
                 seed: int | None = None, dtype: np.dtype | type = np.float64) -> None:
        check_lm_options(vocab_size, embed_dim, num_heads, num_layers, forward_expansion,
                         context)
        V, E = vocab_size, embed_dim
        self.vocab_size, self.embed_dim, self.num_heads = V, E, num_heads
        self.num_layers, self.forward_expansion, self.context = num_layers, forward_expansion, \
            context
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {
            "embed_W": (rng.standard_normal((V, E)) / np.sqrt(E)).astype(dtype)}
        for i in range(num_layers):
            block = transformer_block_params(E, forward_expansion, rng, dtype)
            self.params.update({block_key(i, k): v for k, v in block.items()})
        self.params["W"] = (rng.standard_normal((E, V)) / np.sqrt(E)).astype(dtype)
        self.params["b_out"] = np.zeros(V, dtype=dtype)
        p = self.params
        self.embed = Embedding(p["embed_W"])
        self.blocks = [TransformerBlock({k: p[block_key(i, k)] for k in BLOCK_PARAMS},
                                        num_heads, dropout=0.0) for i in range(num_layers)]
        self.affine = TimeAffine(p["W"], p["b_out"])
        self.last_layer = TimeSoftmaxWithLoss()
        self.pe = positional_encoding(context, E, dtype)

    def options(self) -> dict:
        """The constructor arguments (no seed, no dtype): what the torch mirror is built with."""
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim,
                "num_heads": self.num_heads, "num_layers": self.num_layers,
                "forward_expansion": self.forward_expansion, "context": self.context}

    def reset_state(self) -> None:
        """Nothing to reset: the model has no state between windows."""

    def predict(self, xs: np.ndarray) -> np.ndarray:
        """Scores (N, T, V) of the next token at every step; T <= ``context``."""
        T = np.shape(xs)[-1] if np.ndim(xs) == 2 else None
        if T is None or not 1 <= T <= self.context:
            raise ValueError(f"xs: expected shape (N, T) with 1 <= T <= context = "
                             f"{self.context}, got {np.shape(xs)}")
        h = self.embed.forward(xs) + self.pe[:T]
        mask = causal_mask(T)
        for block in self.blocks:
            h = block.forward(h, h, h, mask, train_flg=True)
        return self.affine.forward(h)

    def loss(self, xs: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return self.last_layer.forward(self.predict(xs), ts)

    def gradient(self, xs: np.ndarray, ts: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(xs, ts)`` by backprop, keyed like ``params``."""
        self.loss(xs, ts)
        dh = self.affine.backward(self.last_layer.backward())
        grads = {"W": self.affine.dW, "b_out": self.affine.db}
        for i in reversed(range(self.num_layers)):
            dh = sum(self.blocks[i].backward(dh))       # query, key and value were one array
            grads.update({block_key(i, k): g for k, g in self.blocks[i].grads().items()})
        self.embed.backward(dh)
        grads["embed_W"] = self.embed.dW
        return {k: grads[k] for k in self.params}

    def generate(self, start: list[int], length: int, rng: np.random.Generator,
                 temperature: float = 1.0) -> list[int]:
        """``start`` followed by ``length`` tokens, each sampled from the softmax over the
        scores after the last ``context`` tokens."""
        out = list(start)
        for _ in range(length):
            scores = self.predict(np.asarray([out[-self.context:]]))[0, -1]
            p = softmax(scores.astype(np.float64) / temperature)
            out.append(int(rng.choice(len(p), p=p / p.sum())))
        return out
