"""Mirror of ``scratch.layernorm`` on ``torch.nn.LayerNorm``.

``LayerNormalization(gamma, beta, eps)`` is an ``nn.LayerNorm(D, eps)`` whose
``weight`` and ``bias`` are gamma and beta (same layout, no transpose);
``gamma``/``beta``/``dgamma``/``dbeta`` read them back under the course's names.
"""

from __future__ import annotations

import torch
from torch import nn

from scratch._checks_attention import check_last_axis, check_layernorm_params


class LayerNormalization(nn.LayerNorm):
    """Layer normalization over the last axis of x (..., D); see ``scratch.layernorm``."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> None:
        gamma, beta = torch.as_tensor(gamma), torch.as_tensor(beta)
        check_layernorm_params(tuple(gamma.shape), tuple(beta.shape), eps)
        super().__init__(gamma.shape[0], eps=eps, device=gamma.device, dtype=gamma.dtype)
        with torch.no_grad():
            self.weight.copy_(gamma)
            self.bias.copy_(beta)

    @property
    def gamma(self) -> torch.Tensor:
        return self.weight

    @property
    def beta(self) -> torch.Tensor:
        return self.bias

    @property
    def dgamma(self) -> torch.Tensor | None:
        return self.weight.grad

    @property
    def dbeta(self) -> torch.Tensor | None:
        return self.bias.grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_last_axis("x", tuple(x.shape), self.normalized_shape[0])
        return super().forward(x)
