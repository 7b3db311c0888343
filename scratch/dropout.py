"""Dropout: silence a random fraction of the units while training.

In training each unit is kept with probability ``1 - ratio`` (a fresh mask
per forward pass) and zeroed otherwise, so the network cannot rely on any one
unit; at test time every unit is used.  The two modes must agree on average:

* the course's convention (``inverted=False``, the default):
    train  out = x * mask                     eval  out = x * (1 - ratio)
* the inverted convention (``inverted=True``; ``torch.nn.functional.dropout``):
    train  out = x * mask / (1 - ratio)       eval  out = x

Both have E[train output] = eval output.  They differ by the constant factor
``1 - ratio`` in both modes, so a network trained with one convention and
evaluated with the other is off by that factor.

Backward: out is x times a constant (mask, or mask / (1 - ratio)), so
``dx = dout * mask`` (divided by ``1 - ratio`` when inverted); eval backward
is ``dout * (1 - ratio)`` (or dout).

``fixed_mask``: when set (an array of x's shape, 0/1 or boolean), training
uses it instead of drawing one.  That is how a test shares one mask between
this layer and torch (whose random stream differs), and how a gradient check
keeps the loss a deterministic function of the weights.
"""

from __future__ import annotations

import numpy as np

from scratch._arrays import as_float_array
from scratch._checks import check_dout, check_rate, check_same_shape, forward_cache


class Dropout:
    """Dropout with ``ratio`` the probability of dropping a unit, 0 <= ratio < 1.

    forward(x, train_flg=True): x of any shape; returns x's shape.
    ``seed`` seeds the layer's own ``np.random.default_rng`` (a Generator is used as is).
    """

    def __init__(self, ratio: float = 0.5, inverted: bool = False,
                 seed: int | np.random.Generator | None = None) -> None:
        self.ratio, self.inverted = check_rate("ratio", ratio), inverted
        self.rng = np.random.default_rng(seed)
        self.fixed_mask: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.x_shape: tuple[int, ...] | None = None
        self.scale = 1.0

    def forward(self, x: np.ndarray, train_flg: bool = True) -> np.ndarray:
        x = as_float_array(x)
        self.x_shape = x.shape
        keep = 1.0 - self.ratio
        if not train_flg:
            self.mask, self.scale = None, (1.0 if self.inverted else keep)
            return x * self.scale
        if self.fixed_mask is not None:
            check_same_shape("x", x.shape, "fixed_mask", np.shape(self.fixed_mask))
            self.mask = np.asarray(self.fixed_mask, dtype=bool)
        else:
            self.mask = self.rng.random(x.shape) >= self.ratio
        self.scale = 1.0 / keep if self.inverted else 1.0
        return x * self.mask * self.scale

    def backward(self, dout: np.ndarray) -> np.ndarray:
        check_dout(self, np.shape(dout), forward_cache(self, "x_shape"))
        if self.mask is None:
            return dout * self.scale
        return dout * self.mask * self.scale
