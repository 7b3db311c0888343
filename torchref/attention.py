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
    check_block_params,
    check_dropout_ratio,
    check_mha_inputs,
    check_mha_params,
    check_positive_int,
    check_some_key_allowed,
)
from torchref.dropout import Dropout
from torchref.functions import check_input_dtype
from torchref.layernorm import LayerNormalization

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


# ---- the Transformer block (post-norm) --------------------------------------------------
# The Transformer block: the mirror of scratch.attention.TransformerBlock, and the block
# the way the reference text writes it.
#
# * ``TransformerBlock(params, num_heads, dropout, eps)``: the scratch block's layers as
#   modules (``torchref.attention.MultiHeadAttention`` on ``nn.MultiheadAttention``,
#   ``torchref.layernorm.LayerNormalization`` on ``nn.LayerNorm``, ``nn.Linear`` and
#   ``torchref.dropout.Dropout(inverted=True)``, whose ``fixed_mask`` shares a mask with
#   the scratch side), same names, course-layout ``params`` and ``d<name>``.
# * ``ReferenceTransformerBlock(embed_size, heads, dropout, forward_expansion)``: the
#   literal module of the reference text (``self.attention``, ``self.norm1``,
#   ``self.norm2``, ``self.feed_forward = Sequential(Linear, ReLU, Linear)``, one
#   ``self.dropout`` applied twice, ``forward(value, key, query, mask)``), with
#   ``nn.MultiheadAttention`` as its attention.  Its ``mask`` is the text's (True =
#   allowed); the module passes ``~mask`` to ``nn.MultiheadAttention``.
# * ``nn.TransformerEncoderLayer(norm_first=False, activation="relu", batch_first=True)``
#   is the third reference, built by ``torchref.convert.encoder_layer_from_params``;
#   it places its dropouts elsewhere (see ``scratch.attention``).

BLOCK_PARAMS = (*MHA_PARAMS, "gamma1", "beta1", "W1", "b1", "W2", "b2", "gamma2", "beta2")


def transformer_block_params(embed_dim: int, forward_expansion: int = 4,
                             seed: int | None = None, dtype: torch.dtype = torch.float64
                             ) -> dict[str, torch.Tensor]:
    """Initial parameters of a block (as ``scratch.attention``): weights N(0, 1/fan_in)
    from a ``torch.Generator`` seeded with ``seed``, biases and betas 0, gammas 1."""
    e = check_positive_int("embed_dim", embed_dim)
    f = check_positive_int("forward_expansion", forward_expansion) * e
    gen = torch.Generator().manual_seed(seed) if seed is not None else None

    def weight(fan_in: int, fan_out: int) -> torch.Tensor:
        return torch.randn(fan_in, fan_out, generator=gen, dtype=dtype) / fan_in ** 0.5
    shapes = {"W1": (e, f), "W2": (f, e), "b1": (f,)}
    out = {}
    for name in BLOCK_PARAMS:
        shape = shapes.get(name, (e, e) if name.startswith("W") else (e,))
        out[name] = (weight(*shape) if name.startswith("W") else
                     torch.ones(shape, dtype=dtype) if name.startswith("gamma") else
                     torch.zeros(shape, dtype=dtype))
    return out


def _linear(W: torch.Tensor, b: torch.Tensor) -> nn.Linear:
    """An ``nn.Linear`` holding W (in, out) as its (out, in) weight."""
    layer = nn.Linear(W.shape[0], W.shape[1], device=W.device, dtype=W.dtype)
    with torch.no_grad():
        layer.weight.copy_(W.T)
        layer.bias.copy_(b)
    return layer


class TransformerBlock(nn.Module):
    """The post-norm block of ``scratch.attention``, built from its parameter dict."""

    def __init__(self, params: dict[str, torch.Tensor], num_heads: int, dropout: float = 0.0,
                 eps: float = 1e-5) -> None:
        super().__init__()
        check_dropout_ratio(dropout)
        p = {k: torch.as_tensor(v) for k, v in params.items()}
        check_block_params({k: tuple(v.shape) for k, v in p.items()}, num_heads)
        self.attention = MultiHeadAttention(*(p[k] for k in MHA_PARAMS), num_heads)
        self.num_heads, self.dropout = num_heads, dropout
        self.norm1 = LayerNormalization(p["gamma1"], p["beta1"], eps)
        self.norm2 = LayerNormalization(p["gamma2"], p["beta2"], eps)
        self.linear1, self.linear2 = _linear(p["W1"], p["b1"]), _linear(p["W2"], p["b2"])
        self.dropout1, self.dropout2 = Dropout(dropout, True), Dropout(dropout, True)

    def _course(self, name: str, grad: bool) -> torch.Tensor | None:
        if name in MHA_PARAMS:
            return getattr(self.attention, f"d{name}" if grad else name)
        if name[:-1] in ("gamma", "beta"):
            norm = self.norm1 if name.endswith("1") else self.norm2
            return getattr(norm, f"d{name[:-1]}" if grad else name[:-1])
        linear = self.linear1 if name.endswith("1") else self.linear2
        p = linear.weight if name.startswith("W") else linear.bias
        value = p.grad if grad else p
        return value.T if value is not None and name.startswith("W") else value

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Every parameter in the course's layout (views), keyed like the scratch dict."""
        return {k: self._course(k, grad=False) for k in BLOCK_PARAMS}

    def grads(self) -> dict[str, torch.Tensor | None]:
        """Every parameter's gradient after ``backward``, keyed like ``params``."""
        return {k: self._course(k, grad=True) for k in BLOCK_PARAMS}

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, train_flg: bool | None = None) -> torch.Tensor:
        """``train_flg`` overrides the module's mode for the dropouts when given."""
        attention = self.attention(query, key, value, mask)
        x = self.dropout1(self.norm1(attention + query), train_flg)
        ff = self.linear2(torch.relu(self.linear1(x)))
        return self.dropout2(self.norm2(ff + x), train_flg)


class SelfAttention(nn.MultiheadAttention):
    """The text's ``SelfAttention(embed_size, heads)`` module, here ``nn.MultiheadAttention``
    called as ``attention(value, key, query, mask)`` with the text's mask (True = allowed)."""

    def __init__(self, embed_size: int, heads: int) -> None:
        super().__init__(embed_size, heads, batch_first=True)

    def forward(self, value: torch.Tensor, key: torch.Tensor, query: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:  # the text's argument order
        attn_mask = None if mask is None else ~mask
        if attn_mask is not None and attn_mask.dim() == 3:     # (N, Tq, Tk): every head
            attn_mask = attn_mask.repeat_interleave(self.num_heads, dim=0)
        return super().forward(query, key, value, attn_mask=attn_mask, need_weights=False)[0]


class ReferenceTransformerBlock(nn.Module):
    """The Transformer block exactly as the reference text writes it (module docstring)."""

    def __init__(self, embed_size: int, heads: int, dropout: float,
                 forward_expansion: int) -> None:
        super().__init__()
        self.attention = SelfAttention(embed_size, heads)
        self.norm1 = nn.LayerNorm(embed_size)
        self.norm2 = nn.LayerNorm(embed_size)

        self.feed_forward = nn.Sequential(
            nn.Linear(embed_size, forward_expansion * embed_size),
            nn.ReLU(),
            nn.Linear(forward_expansion * embed_size, embed_size),
        )

        self.dropout = nn.Dropout(dropout)

    def forward(self, value: torch.Tensor, key: torch.Tensor, query: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        attention = self.attention(value, key, query, mask)

        # Add skip connection, run through normalization and finally dropout
        x = self.dropout(self.norm1(attention + query))
        forward = self.feed_forward(x)
        out = self.dropout(self.norm2(forward + x))
        return out
