"""Hypothesis strategies for layer normalization, attention and the Transformer
(re-exported by ``torchref.testing.strategies``; import them from there; this module
imports nothing from it).

Conditioning, by construction (see ``torchref.tolerance``): attention weights move by
about ``P (1 - P) * delta`` when a score moves by delta, and a score of magnitude L
carries the rounding ``~u L`` of its matmul, which differs between the two sides.
So inputs are drawn where every score is either small (unit-scale values, |score| <
~50) or *exact* on both sides: the "large" kind draws q and k as small integers
times a power of two with d in {1, 16}, where the scale 1/sqrt(d) (and torch's
d^(-1/4) on q and on k) is a power of two too, so ``q k^T / sqrt(d)`` is computed
without rounding on every side, at magnitudes up to 2304 where ``exp`` overflows in
float32 (88.7) and float64 (709.8).  Layer-norm inputs keep a spread in every
float32 row (as ``batchnorm_case``), since a row that is constant up to rounding
has std ~ sqrt(eps) and its normalised values are rounding noise / 3e-3.

torch's float32 attention backward (the CPU flash kernel) recomputes the weights as
``exp(S - logsumexp)`` with the logsumexp *stored in float32*, whose rounding at a score of
magnitude L is ~u L absolute: at L = 512 a tie gives dv = 0.4999855 instead of 0.5 (2.9e-5
relative; ``torchref.tolerance``).  float32 "large" draws therefore give every query row one
clear winner (d = 1, q a non-zero multiple of 16, the keys of a row distinct multiples of 16:
scores 256 apart), where the weights are exactly 0 and 1 on both sides; float64 (rounding
~1e-13 there) draws ties and d = 16 as well.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchref.testing._nonfinite import dout_edges, maybe_nonfinite
from torchref.testing._strategies_arrays import arrays
from torchref.testing._strategies_arrays import case as _case

MHA_NAMES = ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo")
BLOCK_PARAMS = (*MHA_NAMES, "gamma1", "beta1", "W1", "b1", "W2", "b2", "gamma2", "beta2")


def grid(dtype: type, shape: tuple[int, ...], step: float = 0.25, k: int = 16
         ) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``step * i`` with |i| <= k: exact in float32 and float64, ties included."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-k, k)).map(
        lambda a: (a * step).astype(dtype))


@st.composite
def layernorm_rows(draw: st.DrawFn, dtype: type, max_lead: int = 3,
                   spread: bool | None = None) -> np.ndarray:
    """x (..., D) on the grid k/4, |x| <= 2: 1 to ``max_lead`` leading axes.

    float64: D from 1, constant rows included (std = sqrt(eps): rounding / 3e-3 is still
    ~1e-13).  float32: D >= 2 and every row holds two entries 2 apart, so std >= 0.57 and
    the folded-form difference (``torchref.tolerance``) stays ~u |x| / std^2.  ``spread``
    forces the spread in float64 too (central differences need std >> h)."""
    f32 = np.dtype(dtype) == np.float32
    lead = draw(st.lists(st.integers(1, 3), min_size=1, max_size=max_lead))
    d = draw(st.integers(2 if f32 else 1, 6))
    x = draw(grid(dtype, (*lead, d), 0.25, 8))
    if d > 1 and (f32 or spread or (spread is None and draw(st.booleans()))):
        flat = x.reshape(-1, d)
        flat[:, 0] = np.where(flat[:, 1] < 0, flat[:, 1] + 2, flat[:, 1] - 2)
    return x


@st.composite
def layernorm_case(draw: st.DrawFn, dtype: type, spread: bool | None = None,
                   nonfinite: bool = True) -> object:
    """x (..., D) and init (gamma, beta, eps), |gamma|, |beta| <= 2, eps 1e-5 or drawn;
    ``nonfinite``: +inf/-inf/NaN in x in half the examples."""
    x = draw(maybe_nonfinite(draw(layernorm_rows(dtype, spread=spread)), nonfinite))
    d = x.shape[-1]
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    # no non-finite dout: an open divergence (torchref.tolerance); the pinned edges hold one
    return _case(x, init=(draw(arrays(dtype, (d,), 2.0)), draw(arrays(dtype, (d,), 2.0)), eps))


@st.composite
def attention_mask(draw: st.DrawFn, shape: tuple[int, ...], single: bool | None = None
                   ) -> np.ndarray:
    """A boolean mask (..., Tq, Tk) with at least one allowed key per row; ``single``: exactly
    one (drawn when None: any pattern, a causal one, or a single key per row)."""
    *lead, tq, tk = shape
    kind = ("single" if single else draw(st.sampled_from(["any", "causal", "single"]))
            if single is not False else "any")
    keep = draw(hnp.arrays(np.int64, (*lead, tq), elements=st.integers(0, tk - 1)))
    one = np.arange(tk) == keep[..., None]
    if kind == "single":
        return one
    if kind == "causal":
        return np.broadcast_to(np.tril(np.ones((tq, tk), dtype=bool), max(0, tk - tq)) | one,
                               shape).copy()
    return draw(hnp.arrays(np.bool_, shape)) | one


@st.composite
def attention_case(draw: st.DrawFn, dtype: type, kind: str | None = None,
                   nonfinite: bool = True) -> object:
    """(q, k, v, mask): q (N, [H,] Tq, d), k (N, [H,] Tk, d), v (N, [H,] Tk, dv), mask None,
    (Tq, Tk) or the full (N, [H,] Tq, Tk).  ``kind``: "unit" values in [-2, 2] or "large"
    exact scores up to 2304 (module docstring); drawn when None."""
    kind = kind or draw(st.sampled_from(["unit", "unit", "large"]))
    lead = (draw(st.integers(1, 3)),) + ((draw(st.integers(1, 3)),) if draw(st.booleans())
                                         else ())
    tq, tk, dv = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    if kind == "large" and np.dtype(dtype) == np.float32:
        # one clear winner per row (torch's float32 backward, see the module docstring)
        d, p = 1, 16.0
        a = draw(hnp.arrays(np.int64, (*lead, tq, 1), elements=st.sampled_from([-3, -2, -1,
                                                                                 1, 2, 3])))
        rows = [draw(st.permutations(range(-3, 4)))[:tk] for _ in range(int(np.prod(lead)))]
        q = (a * p).astype(dtype)
        k = (np.array(rows).reshape(*lead, tk, 1) * p).astype(dtype)
    elif kind == "large":
        d = draw(st.sampled_from([1, 16]))
        p = 16.0 if d == 1 else 8.0
        q = (draw(hnp.arrays(np.int64, (*lead, tq, d), elements=st.integers(-3, 3))) * p)
        k = (draw(hnp.arrays(np.int64, (*lead, tk, d), elements=st.integers(-3, 3))) * p)
        q, k = q.astype(dtype), k.astype(dtype)
    else:
        d = draw(st.integers(1, 6))
        q, k = draw(arrays(dtype, (*lead, tq, d), 2.0)), draw(arrays(dtype, (*lead, tk, d), 2.0))
    v = draw(arrays(dtype, (*lead, tk, dv), 2.0))
    form = draw(st.sampled_from(["none", "shared", "full"]))
    mask = (None if form == "none" else
            draw(attention_mask((tq, tk) if form == "shared" else (*lead, tq, tk))))
    # non-finite v only: +-inf in q or k can make a row of scores all -inf, where torch
    # returns 0 and the softmax NaN (torchref.tolerance)
    v = draw(maybe_nonfinite(v, nonfinite))
    return _case(q, k, v, mask, dout_edges=draw(dout_edges(nonfinite)))


@st.composite
def mha_weights(draw: st.DrawFn, dtype: type, e: int, bound: float = 0.5) -> list[np.ndarray]:
    """Wq, Wk, Wv, Wo (E, E) and bq, bk, bv, bo (E,), values in [-bound, bound]."""
    return ([draw(arrays(dtype, (e, e), bound)) for _ in range(4)]
            + [draw(arrays(dtype, (e,), bound)) for _ in range(4)])


@st.composite
def mha_inputs(draw: st.DrawFn, dtype: type, e: int, self_attention: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(query (N, Tq, E), key, value (N, Tk, E), mask None | (Tq, Tk) | (N, Tq, Tk)), values
    in [-1, 1]; ``self_attention``: key and value equal to query (drawn when None)."""
    n, tq = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    query = draw(arrays(dtype, (n, tq, e), 1.0))
    if self_attention is None:
        self_attention = draw(st.booleans())
    if self_attention:
        key = value = query
    else:
        tk = draw(st.integers(1, 4))
        key, value = (draw(arrays(dtype, (n, tk, e), 1.0)) for _ in range(2))
    tk = key.shape[1]
    form = draw(st.sampled_from(["none", "shared", "batch"]))
    mask = (None if form == "none" else
            draw(attention_mask((tq, tk) if form == "shared" else (n, tq, tk))))
    return query, key.copy(), value.copy(), mask


@st.composite
def mha_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """init (Wq ... bo, num_heads) with E = num_heads * head_dim <= 8, args (query, key, value,
    mask).  Weights in [-0.5, 0.5], inputs in [-1, 1]: scores stay below ~10 (conditioning)."""
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    e = heads * head_dim
    weights = draw(mha_weights(dtype, e))
    query, key, value, mask = draw(mha_inputs(dtype, e))
    value = draw(maybe_nonfinite(value, nonfinite))     # only value: see attention_case
    # no non-finite dout: an open divergence of dkey (torchref.tolerance)
    return _case(query, key, value, mask, init=(*weights, heads))


@st.composite
def block_params(draw: st.DrawFn, dtype: type, e: int, conditioned: bool = False
                 ) -> dict[str, np.ndarray]:
    """A Transformer block's parameters (``BLOCK_PARAMS``), E = ``e``, hidden width
    forward_expansion * E with forward_expansion 1 or 2.

    ``conditioned`` (float32): both layer norms see inputs with a spread comparable to their
    size (see ``transformer_block_case``): gamma1, gamma2 in [0.5, 2] (positive: a sign
    flip can turn a normalised row into a constant one), and the sub-layers that add to
    the residual stream small (Wv, Wo, bv, bo <= 1/8; W1 <= 1/64, W2, b2 <= 1/32), and no
    relu input near its kink (where rounding picks the side): |b1| in [1, 2] dominates
    |x W1| <= 1, so each hidden unit is on (b1 > 0) or off (b1 < 0) on both sides."""
    f = draw(st.integers(1, 2)) * e
    small, tiny = (0.125, 1 / 32) if conditioned else (0.5, 0.5)
    w = [draw(arrays(dtype, (e, e), 0.5 if i < 2 else small)) for i in range(4)]
    b = [draw(arrays(dtype, (e,), 0.5 if i < 2 else small)) for i in range(4)]
    params = dict(zip(MHA_NAMES, w + b, strict=True))

    def gamma() -> np.ndarray:
        if conditioned:
            return draw(hnp.arrays(dtype, (e,), elements=st.floats(0.5, 2.0, width=32)))
        return draw(arrays(dtype, (e,), 2.0))
    if conditioned:
        w1 = draw(arrays(dtype, (e, f), 1 / 64))
        b1 = draw(hnp.arrays(dtype, (f,), elements=st.floats(1.0, 2.0, width=32))) * draw(
            hnp.arrays(dtype, (f,), elements=st.sampled_from([-1.0, 1.0])))
    else:
        w1, b1 = draw(arrays(dtype, (e, f), 0.5)), draw(arrays(dtype, (f,), 0.5))
    params.update(gamma1=gamma(), beta1=draw(arrays(dtype, (e,), small)), W1=w1, b1=b1,
                  W2=draw(arrays(dtype, (f, e), tiny)), b2=draw(arrays(dtype, (e,), tiny)),
                  gamma2=gamma(), beta2=draw(arrays(dtype, (e,), 1.0)))
    return params


@st.composite
def transformer_block_case(draw: st.DrawFn, dtype: type, self_attention: bool = False,
                           dropout: bool = True, conditioned: bool | None = None,
                           nonfinite: bool = True) -> object:
    """init (the 16 parameters in ``BLOCK_PARAMS`` order, num_heads, dropout ratio, keep-mask 1,
    keep-mask 2), args (query, key, value, mask) or, ``self_attention``, (x, mask).
    E = heads * head_dim >= 2 (layer norm over one feature is the constant beta).  The two
    dropout masks (N, Tq, E) are drawn (shared by both sides); ratio 0 and no masks unless
    ``dropout``.

    float32 is conditioned (``torchref.tolerance``, layer normalization): torch's CPU layer
    norm computes ``(x - mean) * rstd`` in the folded form ``x * rstd - mean * rstd``, which
    differs from the course's by about ``u |x| / std`` (times dout, summed over the tokens
    for dgamma), so every layer norm input needs a spread comparable to its size.  The query
    rows are centred grid rows with two entries 1 apart, and ``block_params(conditioned=True)``
    keeps the attention and feed-forward additions small; the first dropout keeps every
    unit (dropping x's row would leave norm2 only the small feed-forward output: the
    first mask is drawn in float64 only).  ``conditioned=True`` asks for the
    same in float64 (central differences need layer-norm inputs with std >> h)."""
    if conditioned is None:
        conditioned = np.dtype(dtype) == np.float32
    heads, head_dim = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    e = max(2, heads * head_dim)
    heads = heads if e % heads == 0 else 1
    params = draw(block_params(dtype, e, conditioned))
    same = self_attention or draw(st.booleans())
    query, key, value, mask = draw(mha_inputs(dtype, e, same))
    if conditioned:
        rows = draw(grid(np.float64, query.shape, 0.25, 8))
        rows[..., 0] = rows[..., 1] + 1
        query = (rows - rows.mean(axis=-1, keepdims=True)).astype(dtype)
        if same:
            key, value = query.copy(), query.copy()
    ratio = draw(st.sampled_from([0.0, 0.1, 0.5])) if dropout else 0.0
    masks = ((draw(hnp.arrays(np.bool_, query.shape)), draw(hnp.arrays(np.bool_, query.shape)))
             if ratio else (None, None))
    if ratio and conditioned:       # a dropped row of x would leave norm2 only the small ff
        masks = (np.ones(query.shape, dtype=bool), masks[1])
    init = (*(params[k] for k in BLOCK_PARAMS), heads, ratio, *masks)
    # no non-finite dout (the layer norms' open divergence, torchref.tolerance)
    if self_attention:          # x is the keys too (see attention_case): finite
        return _case(query, mask, init=init)
    value = draw(maybe_nonfinite(value, nonfinite))
    return _case(query, key, value, mask, init=init)


@st.composite
def positional_encoding_case(draw: st.DrawFn, dtype: type) -> object:
    """(T, E) from 1 (odd E included) up to T = 64, E = 16, and the dtype as a keyword."""
    return _case(draw(st.integers(1, 64)), draw(st.integers(1, 16)), dtype=np.dtype(dtype))


@st.composite
def transformer_classifier_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """A small classifier: init (constructor kwargs, seed), args (x (N, 1, T, F), labels)."""
    heads = draw(st.integers(1, 2))
    kwargs = {"seq_len": draw(st.integers(1, 4)), "input_dim": draw(st.integers(1, 4)),
              "embed_dim": heads * draw(st.integers(1, 3)), "num_heads": heads,
              "forward_expansion": draw(st.integers(1, 2)), "n_classes": draw(st.integers(2, 4))}
    kwargs["embed_dim"] = max(kwargs["embed_dim"], 2 * heads)
    n = draw(st.integers(1, 4))
    x = draw(maybe_nonfinite(draw(arrays(dtype, (n, 1, kwargs["seq_len"], kwargs["input_dim"]),
                                         1.0)), nonfinite))
    t = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, kwargs["n_classes"] - 1)))
    return _case(x, t, init=(kwargs, draw(st.integers(0, 2**32 - 1))))
