"""The components table, attention part: LayerNorm, attention, the Transformer block and model.

Imported by ``torchref.components`` (``TOPICAL_MODULES``, so ``COMPONENTS`` holds these
rows too: ``parity_tests/test_components.py`` and ``python -m torchref.report``
cover them).  The native references:

* ``LayerNormalization``: ``F.layer_norm``.
* ``scaled_dot_product_attention``: ``F.scaled_dot_product_attention``.
* ``MultiHeadAttention`` (mirror: ``nn.MultiheadAttention``): torch's functional pieces
  assembled the textbook way, ``F.linear`` projections, heads by reshaping,
  ``F.scaled_dot_product_attention``, ``F.linear`` out.
* ``TransformerBlock``: the reference text's literal module, with the two dropout
  masks shared; ``TransformerBlock(encoder layer)``: ``nn.TransformerEncoderLayer``
  (post-norm, relu) on one sequence, dropout 0 (the two place dropout differently:
  ``scratch.attention``).  Both natives are called through
  ``torch.func.functional_call`` with the course-layout tensors mapped onto the
  module's parameter names (``torchref.convert``), so autograd reaches the course's
  W, b, gamma, beta themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

import scratch.attention as sa
import scratch.attention as str_
import scratch.layernorm as sln
import scratch.models_attention as sma
import torchref.attention as ta
import torchref.attention as ttr
import torchref.convert as tc
import torchref.layernorm as tln
import torchref.models_attention as tma
from torchref.parity import Case, Component, Sides, _dout
from torchref.registry import inputs, model_runners, register

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def sdpa_vjp(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
             mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hand-derived backward of ``scratch.attention`` (dq, dk, dv)."""
    return sa.scaled_dot_product_attention_backward(dout, q, k, v, mask)


def mha_native(Wq, Wk, Wv, Wo, bq, bk, bv, bo, num_heads, query, key, value, mask=None):
    """Multi-head attention from ``F.linear`` and ``F.scaled_dot_product_attention``."""
    def heads(x: torch.Tensor) -> torch.Tensor:
        n, t, e = x.shape
        return x.reshape(n, t, num_heads, e // num_heads).transpose(1, 2)
    q, k, v = (heads(F.linear(x, W.T, b)) for x, W, b in ((query, Wq, bq), (key, Wk, bk),
                                                          (value, Wv, bv)))
    if mask is not None and mask.dim() == 3:
        mask = mask[:, None]
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return F.linear(o.transpose(1, 2).flatten(2), Wo.T, bo)


# ---- runners for layers whose backward returns several input gradients --------------------

def _copy(a: Any) -> Any:
    return a.copy() if isinstance(a, np.ndarray) else a


def _mha_scratch(case: Case, dout_seed: int) -> Sides:
    layer = sa.MultiHeadAttention(*(_copy(a) for a in case.init))
    out = layer.forward(*(_copy(a) for a in case.args))
    grads = layer.backward(_dout(out, dout_seed, case.dout_edges))
    return {"out": out}, {**dict(zip(("dquery", "dkey", "dvalue"), grads, strict=True)),
                          **{f"d{p}": getattr(layer, f"d{p}") for p in sa.MHA_PARAMS}}


class SelfAttentionBlock(str_.TransformerBlock):
    """The scratch block on one sequence x as query, key and value (an encoder layer):
    ``backward`` returns dx = dquery + dkey + dvalue."""

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None,  # type: ignore[override]
                train_flg: bool = True) -> np.ndarray:
        return super().forward(x, x, x, mask, train_flg)

    def backward(self, dout: np.ndarray) -> np.ndarray:  # type: ignore[override]
        dquery, dkey, dvalue = super().backward(dout)
        return dquery + dkey + dvalue


def _split_init(init: tuple) -> tuple[dict[str, Any], tuple]:
    """A block case's init: (the parameters keyed by name, the other arguments)."""
    n = len(str_.BLOCK_PARAMS)
    return dict(zip(str_.BLOCK_PARAMS, init[:n], strict=True)), tuple(init[n:])


def _block_runners(self_attention: bool) -> tuple[Callable[..., Sides], Callable[..., Sides]]:
    """Runners of the block: init (16 params, heads, ratio, mask1, mask2), args (q, k, v, mask)
    or (x, mask); the dropout keep-masks set on both sides (``fixed_mask``)."""
    names = ("dx",) if self_attention else ("dquery", "dkey", "dvalue")

    def run_scratch(case: Case, dout_seed: int) -> Sides:
        params, (heads, ratio, *masks) = _split_init(case.init)
        block = str_.TransformerBlock({k: v.copy() for k, v in params.items()}, heads, ratio)
        block.dropout1.fixed_mask, block.dropout2.fixed_mask = masks
        *xs, mask = (_copy(a) for a in case.args)
        out = block.forward(*(xs * 3 if self_attention else xs), mask)
        grads = block.backward(_dout(out, dout_seed, case.dout_edges))
        grads = (sum(grads),) if self_attention else grads
        return {"out": out}, {**dict(zip(names, grads, strict=True)),
                              **{f"d{k}": v for k, v in block.grads().items()}}

    def run_torch(case: Case, device: torch.device, dout_seed: int) -> Sides:
        params, (heads, ratio, *masks) = _split_init(case.init)
        block = ttr.TransformerBlock(tc.tensors_from_numpy(params, device), heads, ratio)
        for layer, m in zip((block.dropout1, block.dropout2), masks, strict=True):
            layer.fixed_mask = None if m is None else torch.from_numpy(m).to(device)
        *xs, mask = case.args
        xs = [torch.from_numpy(x.copy()).to(device).requires_grad_(True) for x in xs]
        mask = None if mask is None else torch.from_numpy(mask).to(device)
        with torch.enable_grad():
            out = block(*(xs * 3 if self_attention else xs), mask, train_flg=True)
            out.backward(torch.from_numpy(_dout(out.detach().cpu().numpy(), dout_seed,
                                               case.dout_edges)
                                          ).to(device))
        return {"out": out}, {**{n: x.grad for n, x in zip(names, xs, strict=True)},
                              **{f"d{k}": v for k, v in block.grads().items()}}
    return run_scratch, run_torch


class MaskedDropouts(torch.nn.Module):
    """Stands in for the literal block's one ``self.dropout`` (applied twice): the i-th call
    multiplies by the i-th shared keep-mask and divides by 1 - ratio (``nn.Dropout``'s rule)."""

    def __init__(self, masks: list[torch.Tensor | None], ratio: float) -> None:
        super().__init__()
        self.masks, self.ratio, self.calls = masks, ratio, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.masks[self.calls % len(self.masks)]
        self.calls += 1
        return x if mask is None else x * mask.to(x.dtype) / (1 - self.ratio)


def literal_block_native(*init_and_args: Any) -> torch.Tensor:
    """The reference text's block, ``forward(value, key, query, mask)``, on the course's
    tensors (functional_call), its dropout replaced by the shared masks."""
    params, (heads, ratio, mask1, mask2, query, key, value, mask) = _split_init(init_and_args)
    module = tc.reference_block_from_params(params, heads, ratio)
    module.dropout = MaskedDropouts([mask1, mask2], ratio)
    return functional_call(module, tc.reference_block_parameters(params),
                           (value, key, query, mask))


def encoder_layer_native(*init_and_args: Any) -> torch.Tensor:
    """``nn.TransformerEncoderLayer`` (dropout 0) on x, torch's mask convention (~mask)."""
    params, (heads, _ratio, _mask1, _mask2, x, mask) = _split_init(init_and_args)
    layer = tc.encoder_layer_from_params(params, heads)
    src_mask = None if mask is None else ~mask
    if src_mask is not None and src_mask.dim() == 3:        # (N * heads, T, T)
        src_mask = src_mask.repeat_interleave(heads, dim=0)
    return functional_call(layer, tc.encoder_layer_parameters(params), (x,),
                           {"src_mask": src_mask})


# ---- pinned non-finite edges (Component.examples; parity_tests/test_components.py) ---------------

inf, nan = np.inf, np.nan
_q = np.array([[[inf, 0.5], [0.5, -1.0], [1.0, 0.25]], [[0.5, 1.0], [nan, -0.5], [0.25, 0.5]]])
_k = np.array([[[0.5, -inf], [1.0, 0.5]], [[0.5, 0.5], [-1.0, 0.25]]])
_v = np.array([[[1.0, nan], [0.5, -1.0]], [[inf, 0.5], [0.25, 1.0]]])
_finite = np.array([[[0.5, -0.5], [1.0, 0.25], [-1.0, 0.75]]] * 2)
_mask = np.array([[True, False], [True, True], [False, True]])
SDPA_EDGES = (Case((_q, _k, _v, None)), Case((_q, _k, _v, _mask)),
              Case((_finite, _finite[:, :2], _finite[:, :2], _mask), dout_edges=True))
_W = np.array([[0.5, -0.25], [0.25, 0.5]])
_b = np.array([0.1, -0.1])
MHA_EDGES = tuple(Case(a, (_W, _W.T.copy(), -_W, _W, _b, -_b, _b, _b, h), dout_edges=d)
                  for a, h, d in (((_q, _k, _v, None), 1, False), ((_q, _q, _q, _mask[:, [0, 0, 1]]
                                                                     ), 2, False),
                                  ((_finite, _finite, _finite, None), 2, True)))
LAYERNORM_EDGES = (
    Case((np.array([[inf, 0.0, 1.0], [-inf, 1.0, 2.0], [nan, 0.0, 1.0], [0.5, -1.0, 2.0]]),),
         (np.array([1.0, 0.5, -1.0]), np.array([0.0, 1.0, 0.5]), 1e-5)),
    Case((np.array([[0.5, 0.0, 1.0], [-1.0, 1.0, 2.0]]),),
         (np.array([1.0, 0.5, -1.0]), np.array([0.0, 1.0, 0.5]), 1e-5), dout_edges=True))

_g, _z = np.array([1.0, 0.5]), np.array([0.1, -0.2])
_BLOCK_INIT = (_W, _W.T.copy(), -_W, _W, _b, -_b, _b, _b, _g, _z, _W, np.array([0.5, -0.5]),
               -_W, _z, _g, _z, 1, 0.0, None, None)
BLOCK_EDGES = (Case((_q, _k, _v, None), _BLOCK_INIT), Case((_q, _q, _q, _mask[:, [0, 0, 1]]),
                                                           _BLOCK_INIT),
               Case((_finite, _finite, _finite, None), _BLOCK_INIT, dout_edges=True))
SELF_BLOCK_EDGES = (Case((_q, None), _BLOCK_INIT), Case((_q, _mask[:, [0, 0, 1]]), _BLOCK_INIT),
                    Case((_finite, None), _BLOCK_INIT, dout_edges=True))
_x = np.linspace(-1.0, 1.0, 12).reshape(2, 1, 3, 2)
_x[0, 0, 0] = (inf, nan)
_x[1, 0, 2, 1] = -inf
CLASSIFIER_EDGES = (Case((_x, np.array([0, 1])), ({"seq_len": 3, "input_dim": 2, "embed_dim": 2,
                                                  "num_heads": 1, "forward_expansion": 1,
                                                  "n_classes": 2}, 0)),)

_block_scratch, _block_torch = _block_runners(self_attention=False)
_self_scratch, _self_torch = _block_runners(self_attention=True)
_mha_params = tuple(sa.MHA_PARAMS)


def _classifier(case: Case) -> sma.TransformerClassifier:
    kwargs, seed = case.init
    return sma.TransformerClassifier(**kwargs, seed=seed, dtype=case.args[0].dtype)


_clf_scratch, _clf_torch = model_runners(_classifier, tma.TransformerClassifier)

for _c in (
    Component("LayerNormalization", sln.LayerNormalization, tln.LayerNormalization,
              inputs("layernorm_case"), params=("gamma", "beta"),
              native=lambda gamma, beta, eps, x: F.layer_norm(x, gamma.shape, gamma, beta, eps),
              group="attention", examples=LAYERNORM_EDGES),
    Component("scaled_dot_product_attention", sa.scaled_dot_product_attention,
              ta.scaled_dot_product_attention, inputs("attention_case"), backward=sdpa_vjp,
              grad_args=(0, 1, 2), native=F.scaled_dot_product_attention, group="attention",
              examples=SDPA_EDGES),
    Component("MultiHeadAttention", sa.MultiHeadAttention, ta.MultiHeadAttention,
              inputs("mha_case"), params=_mha_params, grad_args=(0, 1, 2), native=mha_native,
              run_scratch=_mha_scratch, group="attention", examples=MHA_EDGES),
    Component("TransformerBlock", str_.TransformerBlock, ttr.TransformerBlock,
              inputs("transformer_block_case"), grad_args=(0, 1, 2), native=literal_block_native,
              params=str_.BLOCK_PARAMS,
              run_scratch=_block_scratch, run_torch=_block_torch, group="attention",
              examples=BLOCK_EDGES),
    Component("TransformerBlock(encoder layer)", SelfAttentionBlock, ttr.TransformerBlock,
              inputs("transformer_block_case", self_attention=True, dropout=False),
              native=encoder_layer_native, run_scratch=_self_scratch, run_torch=_self_torch,
              params=str_.BLOCK_PARAMS,
              group="attention", examples=SELF_BLOCK_EDGES,
              skip={"nonfinite": "drawn finite (x is also the keys; the layer norms' dout), "
                                 "pinned non-finite edges only (torchref.tolerance)"}),
    Component("positional_encoding", sa.positional_encoding,
              lambda T, E, dtype: ta.positional_encoding(T, E, TORCH_DTYPES[dtype]),
              inputs("positional_encoding_case"),
              skip={"backward": "a constant table of (T, E): nothing to differentiate",
                    "nonfinite": "its inputs are the integer sizes T and E: no float input, "
                                 "no upstream gradient (torchref.tolerance)"},
              group="attention"),
    # float64 only: the model's layer norms see inputs computed from its random init, which
    # no input maker can keep spread by construction (torchref.tolerance: layer normalization)
    Component("TransformerClassifier", sma.TransformerClassifier, tma.TransformerClassifier,
              inputs("transformer_classifier_case"), run_scratch=_clf_scratch,
              run_torch=_clf_torch, dtypes=(np.float64,), group="models",
              examples=CLASSIFIER_EDGES),
):
    register(_c)
