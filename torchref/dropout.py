"""Mirror of ``scratch.dropout`` on ``torch.nn.functional.dropout``.

``F.dropout`` is the inverted convention (train ``x * mask / (1 - p)``, eval
``x``); the course's convention is that times ``1 - p`` in both modes.  torch
draws its mask from its own random stream, which no NumPy generator
reproduces: to compare the two sides a test sets the same ``fixed_mask`` on
both (then this layer multiplies by the mask itself, as ``F.dropout`` would).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import check_rate, check_same_shape


class Dropout(nn.Module):
    """Dropout of ``ratio`` of the units; ``inverted`` picks torch's scaling (see scratch)."""

    def __init__(self, ratio: float = 0.5, inverted: bool = False) -> None:
        super().__init__()
        self.ratio, self.inverted = check_rate("ratio", ratio), inverted
        self.fixed_mask: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, inverted={self.inverted}"

    def forward(self, x: torch.Tensor, train_flg: bool | None = None) -> torch.Tensor:
        """``train_flg`` overrides the module's mode (``self.training``) when given."""
        training = self.training if train_flg is None else train_flg
        keep = 1.0 - self.ratio
        if not training:
            return x if self.inverted else x * keep
        if self.fixed_mask is None:
            out = F.dropout(x, self.ratio, training=True)      # x * mask / keep
            return out if self.inverted else out * keep
        check_same_shape("x", tuple(x.shape), "fixed_mask", tuple(self.fixed_mask.shape))
        out = x * self.fixed_mask.to(device=x.device, dtype=x.dtype)
        return out / keep if self.inverted else out
