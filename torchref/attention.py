"""Mirror of ``scratch.attention`` on ``F.scaled_dot_product_attention`` and
``nn.MultiheadAttention``; backward is autograd.

Masks follow the scratch side: boolean, True where attention is *allowed*
(``F.scaled_dot_product_attention``'s convention).  ``nn.MultiheadAttention``'s
boolean ``attn_mask`` means the opposite (True = *not* allowed) and wants one
(Tq, Tk) mask or one per batch *and head*, (N * H, Tq, Tk): ``MultiHeadAttention``
passes ``~mask``, repeated over the heads.  Bad input raises the scratch side's
``ValueError`` (``scratch._checks_attention``), word for word.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks_attention import (
    check_attention_args,
    check_mha_inputs,
    check_mha_params,
    check_positive_int,
    check_some_key_allowed,
)
from torchref.functions import check_input_dtype

MHA_PARAMS = ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")


def _check_mask_rows(mask: torch.Tensor | None, scores: tuple[int, ...]) -> None:
    if mask is not None:
        check_some_key_allowed(int((~mask.broadcast_to(scores).any(dim=-1)).sum()), scores)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)`` with the scratch checks."""
    scores = check_attention_args(tuple(q.shape), tuple(k.shape), tuple(v.shape),
                                  None if mask is None else tuple(mask.shape),
                                  mask is None or mask.dtype == torch.bool)
    _check_mask_rows(mask, scores)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class MultiHeadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention(E, H, batch_first=True)`` built from the course's arrays.

    ``in_proj_weight`` (3E, E) = [Wq^T; Wk^T; Wv^T], ``in_proj_bias`` = [bq; bk; bv],
    ``out_proj`` = (Wo^T, bo).  ``Wq`` ... ``bo`` and ``dWq`` ... ``dbo`` read them back in
    the course's (in, out) layout (views).  ``forward(query, key, value, mask=None)``
    returns the output only (``need_weights=False``).
    """

    def __init__(self, Wq: torch.Tensor, Wk: torch.Tensor, Wv: torch.Tensor, Wo: torch.Tensor,
                 bq: torch.Tensor, bk: torch.Tensor, bv: torch.Tensor, bo: torch.Tensor,
                 num_heads: int) -> None:
        arrays = [torch.as_tensor(a) for a in (Wq, Wk, Wv, Wo, bq, bk, bv, bo)]
        e = check_mha_params({n: tuple(a.shape) for n, a in zip(MHA_PARAMS, arrays,
                                                                  strict=True)}, num_heads)
        super().__init__(e, num_heads, batch_first=True, device=arrays[0].device,
                         dtype=arrays[0].dtype)
        self.load_course(dict(zip(MHA_PARAMS, arrays, strict=True)))

    def load_course(self, params: dict[str, torch.Tensor]) -> None:
        """Copy Wq ... bo (course layout) into torch's packed parameters."""
        with torch.no_grad():
            for name in MHA_PARAMS:
                getattr(self, name).copy_(torch.as_tensor(params[name]))

    def _view(self, name: str, source: torch.Tensor | None) -> torch.Tensor | None:
        if source is None:
            return None
        e = self.embed_dim
        if name == "Wo":
            return source.T
        if name == "bo":
            return source
        i = "qkv".index(name[1])
        block = source[i * e:(i + 1) * e]
        return block.T if name.startswith("W") else block

    def _source(self, name: str, grad: bool) -> torch.Tensor | None:
        if name in ("Wo", "bo"):
            p = self.out_proj.weight if name == "Wo" else self.out_proj.bias
        else:
            p = self.in_proj_weight if name.startswith("W") else self.in_proj_bias
        return p.grad if grad else p

    def __getattr__(self, name: str):
        if name in MHA_PARAMS:
            return self._view(name, self._source(name, grad=False))
        if name.startswith("d") and name[1:] in MHA_PARAMS:
            return self._view(name[1:], self._source(name[1:], grad=True))
        return super().__getattr__(name)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        check_mha_inputs(self.embed_dim, tuple(query.shape), tuple(key.shape),
                         tuple(value.shape), None if mask is None else tuple(mask.shape),
                         mask is None or mask.dtype == torch.bool)
        check_input_dtype(query, self.in_proj_weight, "query")
        n, tq, tk, h = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        attn_mask = None
        if mask is not None:
            mask = mask.to(query.device)
            _check_mask_rows(mask if mask.dim() == 2 else mask[:, None], (n, h, tq, tk))
            attn_mask = ~mask if mask.dim() == 2 else (~mask).repeat_interleave(h, dim=0)
        return super().forward(query, key, value, attn_mask=attn_mask, need_weights=False)[0]


def positional_encoding(T: int, E: int, dtype: torch.dtype = torch.float64,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """The sinusoidal table (T, E), written as the PyTorch tutorial writes it
    (``div_term = exp(arange(0, E, 2) * (-log(10000) / E))``), in float64, then cast."""
    check_positive_int("T", T)
    check_positive_int("E", E)
    position = torch.arange(T, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, E, 2, dtype=torch.float64) * (-math.log(10000.0) / E))
    pe = torch.zeros(T, E, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: E // 2])
    return pe.to(dtype=dtype, device=device)
