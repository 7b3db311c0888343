"""Mirror of ``scratch.embedding`` on ``nn.Embedding`` (``weight`` is W, same layout)."""

from __future__ import annotations

import torch
from torch import nn

from scratch._checks import check_ndim
from scratch._seq_checks import embedding_index


class Embedding(nn.Embedding):
    """``forward(idx) = W[idx]``; out-of-vocabulary indices raise the scratch side's error."""

    def __init__(self, W: torch.Tensor) -> None:
        W = torch.as_tensor(W)
        check_ndim("W", tuple(W.shape), (2,))
        super().__init__(W.shape[0], W.shape[1], device=W.device, dtype=W.dtype)
        with torch.no_grad():
            self.weight.copy_(W)

    @property
    def W(self) -> torch.Tensor:
        return self.weight

    @property
    def dW(self) -> torch.Tensor | None:
        return self.weight.grad

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(idx, device=self.weight.device)
        integer = not idx.is_floating_point() and not idx.is_complex() and idx.dtype != torch.bool
        lo, hi = (int(idx.min()), int(idx.max())) if integer and idx.numel() else (0, 0)
        embedding_index(lo, hi, self.num_embeddings, integer)
        return super().forward(idx.long())
