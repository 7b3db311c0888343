"""scratch.attention (hand-derived backward) vs torchref.attention vs F.scaled_dot_product_attention
and nn.MultiheadAttention.

The components table compares both functions on drawn inputs (unit and large scores,
every mask form); here: central differences, the pinned edges (one allowed key, scores
where a naive softmax overflows, T = 1, the same array as query, key and value), the
mask conventions, non-finite inputs and the errors.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import scratch.attention as sa
import torchref.attention as ta
import torchref.convert as tc
from scratch.gradient import numerical_gradient
from torchref.parity import Case
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

MHA = sa.MHA_PARAMS


def torch_sdpa(q, k, v, mask, device, dout):
    ts = [torch.from_numpy(a).to(device).requires_grad_(True) for a in (q, k, v)]
    m = None if mask is None else torch.from_numpy(mask).to(device)
    out = ta.scaled_dot_product_attention(*ts, m)
    out.backward(torch.from_numpy(dout).to(device))
    return out, [t.grad for t in ts]


# ---- scaled dot-product attention ---------------------------------------------------------

LARGE = (np.array([[[3.0], [-3.0]]]) * 16, np.array([[[3.0], [2.0], [-3.0]]]) * 16,
         np.array([[[1.0], [2.0], [3.0]]]), None)     # scores +-2304 and 1536 apart


@given(case=S.attention_case(np.float64, nonfinite=False), seed=S.seeds)
@example(case=Case(LARGE), seed=0)
def test_sdpa_backward_vs_central_differences(case, seed: int) -> None:
    """dq, dk, dv of the hand-derived backward against central differences, float64."""
    q, k, v, mask = case.args
    dout = np.random.default_rng(seed).standard_normal((*q.shape[:-1], v.shape[-1]))
    grads = sa.scaled_dot_product_attention_backward(dout, q, k, v, mask)
    for i, name in enumerate("qkv"):
        def f(w: np.ndarray, i: int = i) -> float:
            args = [q, k, v]
            args[i] = w
            return float(np.sum(sa.scaled_dot_product_attention(*args, mask) * dout))
        assert_close(grads[i], numerical_gradient(f, case.args[i]), mode="numerical",
                     msg=f"d{name}")


@given(dtype=S.dtypes, data=st.data())
def test_a_single_allowed_key_copies_its_value(dtype: type, data, device: torch.device) -> None:
    """A mask allowing one key per query: the weight is exactly 1, out = that key's value,
    dq = dk = 0, dv collects dout; the same on the torch side."""
    case = data.draw(S.attention_case(dtype, nonfinite=False))
    q, k, v, _ = case.args
    mask = data.draw(S.attention_mask((*q.shape[:-1], k.shape[-2]), single=True))
    out = sa.scaled_dot_product_attention(q, k, v, mask)
    np.testing.assert_array_equal(out, np.take_along_axis(v, mask.argmax(-1)[..., None], -2))
    dout = np.ones_like(out)
    dq, dk, dv = sa.scaled_dot_product_attention_backward(dout, q, k, v, mask)
    assert not dq.any() and not dk.any()
    out_t, grads_t = torch_sdpa(q, k, v, mask, device, dout)
    for name, theirs, mine in (("out", out_t, out), ("dq", grads_t[0], dq),
                               ("dk", grads_t[1], dk), ("dv", grads_t[2], dv)):
        assert_close(theirs, mine, msg=name)


@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_scores_where_a_naive_softmax_overflows(dtype: type, device: torch.device) -> None:
    """Exact scores of +-2304 (exp overflows above 88.7 in float32, 709.8 in float64): the
    naive softmax gives inf/inf = NaN, ours and torch's agree, weights one-hot."""
    q, k, v = (a.astype(dtype) for a in LARGE[:3])
    scores = q @ np.swapaxes(k, -1, -2)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    assert np.isnan(naive).any()
    out = sa.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(out, np.array([[[1.0], [3.0]]], dtype))
    dout = np.ones_like(out)
    out_t, grads_t = torch_sdpa(q, k, v, None, device, dout)
    assert_close(out_t, out, msg="forward")
    for name, theirs, mine in zip("qkv", grads_t, sa.scaled_dot_product_attention_backward(
            dout, q, k, v), strict=True):
        assert_close(theirs, mine, msg=f"d{name}")


@pytest.mark.parametrize("where", ["v allowed", "v masked", "k allowed +inf", "k allowed -inf",
                                   "q nan"])
@pytest.mark.parametrize("dtype", S.FLOAT_DTYPES)
def test_non_finite_inputs_as_torch_defines_them(where: str, dtype: type,
                                                 device: torch.device) -> None:
    """A NaN or inf in q, k or v: the same NaN pattern and the same finite values as
    F.scaled_dot_product_attention, forward and backward (a NaN value reaches every output
    of its batch entry, masked or not: 0 * NaN = NaN)."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 2)))
    mask = np.ones((3, 5), dtype=bool)
    mask[:, 3] = False
    pos = 3 if "masked" in where else 1
    value = {"+inf": np.inf, "-inf": -np.inf}.get(where.split()[-1], np.nan)
    if where.startswith("v"):
        v[0, pos, 0] = value
    elif where.startswith("k"):
        k[0, pos] = value
    else:
        q[0, 1, 0] = value
    dout = np.ones((2, 3, 2), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = sa.scaled_dot_product_attention(q, k, v, mask)
        grads = sa.scaled_dot_product_attention_backward(dout, q, k, v, mask)
    out_t, grads_t = torch_sdpa(q, k, v, mask, device, dout)
    if where in ("v allowed", "v masked", "q nan"):
        assert np.isnan(out).any()
    for name, theirs, mine in zip(("out", "dq", "dk", "dv"), (out_t, *grads_t), (out, *grads),
                                  strict=True):
        theirs = theirs.detach().cpu().numpy()
        np.testing.assert_array_equal(np.isnan(theirs), np.isnan(mine), err_msg=name)
        keep = ~np.isnan(mine)
        assert_close(theirs[keep], mine[keep], msg=name)


@given(data=st.data(), dtype=S.dtypes, where=st.sampled_from("qkv"),
       value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_drawn_non_finite_inputs(data, dtype: type, where: str, value: float,
                                 device: torch.device) -> None:
    """One drawn entry of q, k or v set to NaN or +-inf (q and k without a mask: a
    non-finite score at a masked position is the divergence pinned below): the same NaN
    pattern and the same other values as torch, forward and backward."""
    q, k, v, mask = data.draw(S.attention_case(dtype, "unit", nonfinite=False)).args
    target = {"q": q, "k": k, "v": v}[where]
    index = data.draw(st.tuples(*(st.integers(0, n - 1) for n in target.shape)))
    target[index] = value
    mask = mask if where == "v" else None
    dout = np.ones((*q.shape[:-1], v.shape[-1]), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out = sa.scaled_dot_product_attention(q, k, v, mask)
        grads = sa.scaled_dot_product_attention_backward(dout, q, k, v, mask)
    out_t, grads_t = torch_sdpa(q, k, v, mask, device, dout)
    for name, theirs, mine in zip(("out", "dq", "dk", "dv"), (out_t, *grads_t), (out, *grads),
                                  strict=True):
        theirs = theirs.detach().cpu().numpy()
        np.testing.assert_array_equal(np.isnan(theirs), np.isnan(mine), err_msg=name)
        keep = ~np.isnan(mine)
        assert_close(theirs[keep], mine[keep], msg=name)


def test_non_finite_key_at_a_masked_position_diverges(device: torch.device) -> None:
    """The one documented divergence: an inf key where the mask forbids it.  The course
    *replaces* masked scores (``np.where(mask, S, -inf)``), so they cannot matter; torch's
    math kernel turns the boolean mask into an additive bias (0 / -inf), and a NaN or +inf
    score plus -inf is NaN, so torch's row becomes NaN.  Pinned, so a change is noticed."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s) for s in ((1, 2, 3), (1, 4, 3), (1, 4, 2)))
    q[0, :, 0], q[0, :, 1] = 1.0, -1.0                   # scores inf - inf = NaN at key 3
    k[0, 3] = np.inf
    mask = np.array([[True, True, True, False]] * 2)
    with np.errstate(invalid="ignore"):
        out = sa.scaled_dot_product_attention(q, k, v, mask)
    assert np.isfinite(out).all()
    expected = sa.scaled_dot_product_attention(q[..., :, :], k[:, :3], v[:, :3])
    assert_close(out, expected, msg="key 3 ignored, as if absent")
    out_t, _ = torch_sdpa(q, k, v, mask, device, np.ones_like(out))
    assert torch.isnan(out_t).all()


# ---- multi-head attention -----------------------------------------------------------------

def mha_pair(weights: list[np.ndarray], heads: int, device: torch.device):
    ours = sa.MultiHeadAttention(*(w.copy() for w in weights), heads)
    params = tc.tensors_from_numpy(dict(zip(MHA, weights, strict=True)), device)
    native = torch.nn.MultiheadAttention(weights[0].shape[0], heads, batch_first=True,
                                         device=device, dtype=params["Wq"].dtype)
    tc.fill_native_attention(native, params)
    return ours, native


@st.composite
def self_attention_case(draw, dtype=None):
    dtype = dtype or draw(S.dtypes)
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    weights = draw(S.mha_weights(dtype, heads * head_dim))
    x, _, _, mask = draw(S.mha_inputs(dtype, heads * head_dim, self_attention=True))
    return weights, heads, x, mask


ONE_STEP = ([np.eye(2) * 0.5] * 4 + [np.full(2, 0.1)] * 4, 2, np.array([[[1.0, -1.0]]]),
            None)                                           # T = 1: the weight is 1


@given(case=self_attention_case())
@example(case=ONE_STEP)
def test_self_attention_gradient_is_the_sum(case, device: torch.device) -> None:
    """One array x as query, key and value: dquery + dkey + dvalue of the scratch layer is
    autograd's x.grad through nn.MultiheadAttention (module built by torchref.convert,
    torch's mask convention ~mask), and every dW, db agrees."""
    weights, heads, x, mask = case
    ours, native = mha_pair(weights, heads, device)
    out = ours.forward(x, x, x, mask)
    dout = np.random.default_rng(x.size).standard_normal(out.shape).astype(x.dtype)
    dx = sum(ours.backward(dout))
    xt = torch.from_numpy(x).to(device).requires_grad_(True)
    attn_mask = None
    if mask is not None:
        attn_mask = torch.from_numpy(~mask).to(device)
        if attn_mask.dim() == 3:
            attn_mask = attn_mask.repeat_interleave(heads, dim=0)
    out_t = native(xt, xt, xt, attn_mask=attn_mask, need_weights=False)[0]
    out_t.backward(torch.from_numpy(dout).to(device))
    assert_close(out_t, out, msg="forward")
    assert_close(xt.grad, dx, msg="dx = dquery + dkey + dvalue")
    e = x.shape[-1]
    for i, name in enumerate("qkv"):
        assert_close(native.in_proj_weight.grad[i * e:(i + 1) * e].T, getattr(ours, f"dW{name}"),
                     msg=f"dW{name}")
        assert_close(native.in_proj_bias.grad[i * e:(i + 1) * e], getattr(ours, f"db{name}"),
                     msg=f"db{name}")
    assert_close(native.out_proj.weight.grad.T, ours.dWo, msg="dWo")
    assert_close(native.out_proj.bias.grad, ours.dbo, msg="dbo")


@given(case=S.mha_case(np.float64, nonfinite=False), seed=S.seeds)
def test_mha_backward_vs_central_differences(case, seed: int) -> None:
    """Every input and parameter gradient of the layer against central differences."""
    *weights, heads = case.init
    query, key, value, mask = case.args
    layer = sa.MultiHeadAttention(*weights, heads)
    dout = np.random.default_rng(seed).standard_normal(query.shape)
    layer.forward(query, key, value, mask)
    grads = dict(zip(("query", "key", "value"), layer.backward(dout), strict=True))
    grads.update({p: getattr(layer, f"d{p}") for p in MHA})
    inputs = {"query": query, "key": key, "value": value, **dict(zip(MHA, weights, strict=True))}
    for name, grad in grads.items():
        def f(w: np.ndarray, name: str = name) -> float:
            args = {**inputs, name: w}
            mha = sa.MultiHeadAttention(*(args[p] for p in MHA), heads)
            return float(np.sum(mha.forward(args["query"], args["key"], args["value"], mask)
                                * dout))
        assert_close(grad, numerical_gradient(f, inputs[name]), mode="numerical",
                     msg=f"d{name}")


def test_torch_boolean_mask_conventions_differ() -> None:
    """One causal mask, True = allowed: F.scaled_dot_product_attention takes it as is,
    nn.MultiheadAttention needs ~mask (True = not allowed); the mirror converts."""
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal((4, 4)) * 0.5 for _ in range(4)] + [np.zeros(4)] * 4
    x = torch.from_numpy(rng.standard_normal((2, 3, 4)))
    causal = torch.tril(torch.ones(3, 3, dtype=torch.bool))
    mirror = ta.MultiHeadAttention(*(torch.from_numpy(w) for w in weights), 2)
    _, native = mha_pair(weights, 2, torch.device("cpu"))
    ours = torch.from_numpy(sa.MultiHeadAttention(*weights, 2).forward(
        x.numpy(), x.numpy(), x.numpy(), causal.numpy()))
    assert_close(mirror(x, x, x, causal), ours)
    assert_close(native(x, x, x, attn_mask=~causal, need_weights=False)[0], ours)
    wrong = native(x, x, x, attn_mask=causal, need_weights=False)[0]
    assert not torch.allclose(wrong[:, :2], ours[:, :2])    # the same mask, read the other way


# ---- errors: the same message on both sides ---------------------------------------------------

def _arrays(lib):
    return (lambda *s: np.ones(s)) if lib is sa else (lambda *s: torch.ones(s, dtype=torch.float64))


def _bool(lib, *shape):
    return np.ones(shape, dtype=bool) if lib is sa else torch.ones(shape, dtype=torch.bool)


def _no_key(lib):
    m = _bool(lib, 2, 3)
    m[1] = False
    return m


def _mha(lib, e=4, heads=2):
    a = _arrays(lib)
    return lib.MultiHeadAttention(*([a(e, e)] * 4 + [a(e)] * 4), heads)


SDPA_ERRORS = [
    (lambda lib, a: lib.scaled_dot_product_attention(a(2, 3), a(2, 3), a(2, 3)),
     "q: expected shape (N, ..., Tq, d) with at least 3 axes, got (2, 3)"),
    (lambda lib, a: lib.scaled_dot_product_attention(a(1, 2, 3), a(1, 4, 5), a(1, 4, 5)),
     "k: expected shape (1, Tk, 3) to match q (1, 2, 3), got (1, 4, 5)"),
    (lambda lib, a: lib.scaled_dot_product_attention(a(1, 2, 3), a(1, 4, 3), a(1, 5, 2)),
     "v: expected shape (1, 4, dv) to match k (1, 4, 3), got (1, 5, 2)"),
    (lambda lib, a: lib.scaled_dot_product_attention(a(1, 2, 3), a(1, 4, 3), a(1, 4, 3),
                                                     _bool(lib, 3, 4)),
     "mask: expected a shape broadcastable to (N, ..., Tq, Tk) = (1, 2, 4), got (3, 4)"),
    (lambda lib, a: lib.scaled_dot_product_attention(a(1, 2, 3), a(1, 4, 3), a(1, 4, 3),
                                                     a(2, 4)),
     "mask: expected a boolean array (True where attention is allowed)"),
    (lambda lib, a: lib.scaled_dot_product_attention(a(1, 2, 3), a(1, 3, 3), a(1, 3, 3),
                                                     _no_key(lib)),
     "mask: 1 query row(s) allow no key at all"),
    (lambda lib, a: lib.MultiHeadAttention(*([a(4, 4)] * 4 + [a(4)] * 4), 3),
     "num_heads: the embedding size E = 4 must be divisible by num_heads, got 3"),
    (lambda lib, a: lib.MultiHeadAttention(*([a(4, 4)] * 3 + [a(4, 3)] + [a(4)] * 4), 2),
     "Wo: expected shape (4, 4) to match Wq, got (4, 3)"),
    (lambda lib, a: _mha(lib).forward(a(2, 3, 5), a(2, 3, 4), a(2, 3, 4)),
     "query: expected shape (N, Tq, 4), got (2, 3, 5)"),
    (lambda lib, a: _mha(lib).forward(a(2, 3, 4), a(2, 5, 4), a(2, 6, 4)),
     "value: expected shape (2, 5, 4) to match key, got (2, 6, 4)"),
    (lambda lib, a: _mha(lib).forward(a(2, 3, 4), a(2, 5, 4), a(2, 5, 4), _bool(lib, 3, 3)),
     "mask: expected shape (3, 5) or (2, 3, 5), got (3, 3)"),
    (lambda lib, a: lib.positional_encoding(0, 4), "T: expected a positive integer, got 0"),
]


@pytest.mark.parametrize(("make", "message"), SDPA_ERRORS)
def test_errors_same_on_both_sides(make, message: str) -> None:
    errors = []
    for lib in (sa, ta):
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            make(lib, _arrays(lib))
        errors.append(str(err.value))
    assert errors[0] == errors[1]


def test_backward_preconditions() -> None:
    layer = _mha(sa)
    with pytest.raises(RuntimeError, match=r"MultiHeadAttention\.backward called before"):
        layer.backward(np.ones((1, 2, 4)))
    layer.forward(np.ones((1, 2, 4)), np.ones((1, 3, 4)), np.ones((1, 3, 4)))
    with pytest.raises(ValueError, match=re.escape("dout: expected shape (1, 2, 4)")):
        layer.backward(np.ones((1, 3, 4)))
