"""Embedding: a lookup table of learned vectors, one row per token.

``out = W[idx]``: W (V, D) holds one D-vector per token of a vocabulary of V;
idx is an integer array of any shape, out has shape ``idx.shape + (D,)``.  It
equals ``onehot(idx) @ W`` without building the one-hot matrix.

Backward: row v of W received ``dout`` wherever ``idx == v``, so
``dW[v] = sum of dout over the positions where idx == v``.  ``dW[idx] = dout``
would be wrong: with a repeated index the last write wins; ``np.add.at``
accumulates every occurrence.  There is no gradient for the integer ``idx``.
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_dout, check_ndim, forward_cache
from scratch._seq_checks import embedding_index


class Embedding:
    """``forward(idx) = W[idx]``; ``backward(dout)`` sets ``dW`` and returns None."""

    def __init__(self, W: np.ndarray) -> None:
        check_ndim("W", np.shape(W), (2,))
        self.W = W
        self.idx: np.ndarray | None = None
        self.dW: np.ndarray | None = None

    def forward(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        integer = np.issubdtype(idx.dtype, np.integer)
        lo, hi = (int(idx.min()), int(idx.max())) if integer and idx.size else (0, 0)
        embedding_index(lo, hi, self.W.shape[0], integer)
        self.idx = idx
        return self.W[idx]

    def backward(self, dout: np.ndarray) -> None:
        idx = forward_cache(self, "idx")
        D = self.W.shape[1]
        check_dout(self, np.shape(dout), (*idx.shape, D))
        dW = np.zeros_like(self.W)
        np.add.at(dW, idx.reshape(-1), np.reshape(dout, (-1, D)))
        self.dW = dW
        return None
