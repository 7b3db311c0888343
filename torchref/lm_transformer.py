"""Mirror of ``scratch.lm_transformer``: the causal Transformer LM as an ``nn.Module``.

Embedding -> + positional table -> ``torchref.attention.TransformerBlock`` x L (causal
boolean mask, True = allowed) -> TimeAffine -> cross-entropy.  ``params`` are
course-layout views keyed like the scratch model's; ``from_scratch`` copies the scratch
model's exact weights through ``torchref.convert``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._checks_attention import check_lm_options, check_positive_int
from torchref.attention import (
    TransformerBlock,
    positional_encoding,
    transformer_block_params,
)
from torchref.embedding import Embedding
from torchref.time_layers import TimeAffine, TimeSoftmaxWithLoss

if TYPE_CHECKING:
    import scratch.lm_transformer


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) boolean, True where attention is allowed: query i sees keys 0 ... i."""
    return torch.ones(check_positive_int("T", T), T, dtype=torch.bool, device=device).tril()


def block_key(layer: int, name: str) -> str:
    return f"block{layer}.{name}"


class TransformerLM(nn.Module):
    """See ``scratch.lm_transformer.TransformerLM`` (same options, plus dtype and device)."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, num_heads: int = 4,
                 num_layers: int = 2, forward_expansion: int = 4, context: int = 32,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        check_lm_options(vocab_size, embed_dim, num_heads, num_layers, forward_expansion,
                         context)
        V, E = vocab_size, embed_dim
        self.vocab_size, self.embed_dim, self.num_heads = V, E, num_heads
        self.num_layers, self.forward_expansion, self.context = num_layers, forward_expansion, \
            context
        self.embed = Embedding(torch.zeros(V, E, dtype=dtype))
        self.blocks = nn.ModuleList(
            TransformerBlock(transformer_block_params(E, forward_expansion, dtype=dtype),
                             num_heads, dropout=0.0) for _ in range(num_layers))
        self.affine = TimeAffine(torch.zeros(E, V, dtype=dtype), torch.zeros(V, dtype=dtype))
        self.last_layer = TimeSoftmaxWithLoss()
        self.register_buffer("pe", positional_encoding(context, E, dtype))
        self.to(device=device)

    def options(self) -> dict:
        return {"vocab_size": self.vocab_size, "embed_dim": self.embed_dim,
                "num_heads": self.num_heads, "num_layers": self.num_layers,
                "forward_expansion": self.forward_expansion, "context": self.context}

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Course-layout views, keyed as ``scratch.lm_transformer.TransformerLM.params``."""
        out = {"embed_W": self.embed.W}
        for i, block in enumerate(self.blocks):
            out.update({block_key(i, k): v for k, v in block.params.items()})
        return {**out, "W": self.affine.W, "b_out": self.affine.b}

    def grads(self) -> dict[str, torch.Tensor | None]:
        """The gradients after ``backward``, keyed like ``params`` (course layout)."""
        out = {"embed_W": self.embed.dW}
        for i, block in enumerate(self.blocks):
            out.update({block_key(i, k): v for k, v in block.grads().items()})
        return {**out, "W": self.affine.dW, "b_out": self.affine.db}

    def reset_state(self) -> None:
        """Nothing to reset: the model has no state between windows."""

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        T = xs.shape[-1] if xs.dim() == 2 else None
        if T is None or not 1 <= T <= self.context:
            raise ValueError(f"xs: expected shape (N, T) with 1 <= T <= context = "
                             f"{self.context}, got {tuple(xs.shape)}")
        h = self.embed(xs) + self.pe[:T]
        mask = causal_mask(T, h.device)
        for block in self.blocks:
            h = block(h, h, h, mask)
        return self.affine(h)

    def loss(self, xs: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self(xs), ts)

    @torch.no_grad()
    def generate(self, start: list[int], length: int, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> list[int]:
        """``start`` followed by ``length`` tokens sampled after the last ``context`` ones."""
        device = self.embed.weight.device
        out = list(start)
        for _ in range(length):
            scores = self(torch.tensor([out[-self.context:]], device=device))[0, -1]
            p = torch.softmax(scores.double() / temperature, dim=-1).cpu()
            out.append(int(torch.multinomial(p, 1, generator=generator)))
        return out

    @classmethod
    def from_scratch(cls, model: scratch.lm_transformer.TransformerLM,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> TransformerLM:
        """The torch model with the scratch model's options and exact weights."""
        from torchref.convert import copy_params
        dtype = dtype or torch.from_numpy(model.params["W"][:0]).dtype
        tmodel = cls(**model.options(), dtype=dtype, device=device)
        copy_params(tmodel, model.params)
        return tmodel
