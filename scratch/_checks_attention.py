"""Argument checks of layer normalization and attention, shared by both sides.

Pure Python on shapes and plain numbers (like ``scratch._checks``), so
``scratch`` and ``torchref`` reject the same bad input with the same message,
each message naming the argument, what it got and what it expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """True when ``shape`` broadcasts to exactly ``target`` (NumPy's and torch's rule)."""
    if len(shape) > len(target):
        return False
    tail = tuple(target)[len(target) - len(shape):]
    return all(s in (1, t) for s, t in zip(tuple(shape), tail, strict=True))


def check_positive_int(name: str, value: object) -> int:
    """``value`` as an int, or ``ValueError`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def check_layernorm_params(gamma_shape: Sequence[int], beta_shape: Sequence[int],
                           eps: float) -> None:
    """gamma (D,), beta (D,), eps a positive finite number."""
    if len(gamma_shape) != 1:
        raise ValueError(f"gamma: expected a 1-D array (D,), got shape {tuple(gamma_shape)}")
    if tuple(beta_shape) != tuple(gamma_shape):
        raise ValueError(f"beta: expected shape {tuple(gamma_shape)} to match gamma, "
                         f"got {tuple(beta_shape)}")
    if not (isinstance(eps, int | float) and 0 < eps < math.inf):
        raise ValueError(f"eps: expected a positive finite number, got {eps!r}")


def check_last_axis(name: str, shape: Sequence[int], d: int) -> None:
    """``shape`` is (..., d) with at least one axis."""
    if len(shape) < 1 or shape[-1] != d:
        raise ValueError(f"{name}: expected shape (..., {d}), got {tuple(shape)}")


def check_attention_args(q_shape: Sequence[int], k_shape: Sequence[int],
                         v_shape: Sequence[int], mask_shape: Sequence[int] | None,
                         mask_is_bool: bool = True) -> tuple[int, ...]:
    """q (N, ..., Tq, d), k (N, ..., Tk, d), v (N, ..., Tk, dv); mask boolean, broadcastable
    to (N, ..., Tq, Tk).  Returns the shape of the attention scores (N, ..., Tq, Tk)."""
    q, k, v = tuple(q_shape), tuple(k_shape), tuple(v_shape)
    if len(q) < 3:
        raise ValueError(f"q: expected shape (N, ..., Tq, d) with at least 3 axes, got {q}")
    if len(k) != len(q) or k[:-2] != q[:-2] or k[-1] != q[-1]:
        want = (*q[:-2], "Tk", q[-1])
        raise ValueError(f"k: expected shape {want} to match q {q}, got {k}".replace("'", ""))
    if len(v) != len(k) or v[:-1] != k[:-1]:
        want = (*k[:-1], "dv")
        raise ValueError(f"v: expected shape {want} to match k {k}, got {v}".replace("'", ""))
    scores = (*q[:-1], k[-2])
    if mask_shape is not None:
        if not mask_is_bool:
            raise ValueError("mask: expected a boolean array (True where attention is allowed)")
        if not _broadcasts_to(mask_shape, scores):
            raise ValueError(f"mask: expected a shape broadcastable to (N, ..., Tq, Tk) = "
                             f"{scores}, got {tuple(mask_shape)}")
    return scores


def check_some_key_allowed(rows_without_key: int, scores_shape: Sequence[int]) -> None:
    """Every query row must allow at least one key (else its softmax is 0/0)."""
    if rows_without_key:
        raise ValueError(f"mask: {rows_without_key} query row(s) allow no key at all (every "
                         f"entry False) for scores of shape {tuple(scores_shape)}; each query "
                         f"must attend to at least one key")


def check_mha_params(shapes: dict[str, Sequence[int]], num_heads: object) -> int:
    """Wq, Wk, Wv, Wo (E, E) and bq, bk, bv, bo (E,); E divisible by num_heads.  Returns E."""
    e_shape = tuple(shapes["Wq"])
    if len(e_shape) != 2 or e_shape[0] != e_shape[1] or e_shape[0] < 1:
        raise ValueError(f"Wq: expected a square (E, E) array, got shape {e_shape}")
    e = e_shape[0]
    for name, shape in shapes.items():
        want = (e, e) if name.startswith("W") else (e,)
        if tuple(shape) != want:
            raise ValueError(f"{name}: expected shape {want} to match Wq, got {tuple(shape)}")
    heads = check_positive_int("num_heads", num_heads)
    if e % heads:
        raise ValueError(f"num_heads: the embedding size E = {e} must be divisible by "
                         f"num_heads, got {heads}")
    return e


def check_mha_inputs(e: int, query: Sequence[int], key: Sequence[int], value: Sequence[int],
                     mask: Sequence[int] | None, mask_is_bool: bool = True) -> None:
    """query (N, Tq, E), key and value (N, Tk, E); mask (Tq, Tk) or (N, Tq, Tk), boolean."""
    query, key, value = tuple(query), tuple(key), tuple(value)
    if len(query) != 3 or query[-1] != e:
        raise ValueError(f"query: expected shape (N, Tq, {e}), got {query}")
    if len(key) != 3 or key[0] != query[0] or key[-1] != e:
        raise ValueError(f"key: expected shape ({query[0]}, Tk, {e}) to match query, got {key}")
    if value != key:
        raise ValueError(f"value: expected shape {key} to match key, got {value}")
    if mask is not None:
        if not mask_is_bool:
            raise ValueError("mask: expected a boolean array (True where attention is allowed)")
        tq, tk = query[1], key[1]
        if tuple(mask) not in ((tq, tk), (query[0], tq, tk)):
            raise ValueError(f"mask: expected shape ({tq}, {tk}) or ({query[0]}, {tq}, {tk}), "
                             f"got {tuple(mask)}")


BLOCK_PARAMS = ("Wq", "Wk", "Wv", "Wo", "bq", "bk", "bv", "bo", "gamma1", "beta1", "W1", "b1",
                "W2", "b2", "gamma2", "beta2")


def check_block_params(shapes: dict[str, Sequence[int]], num_heads: object) -> tuple[int, int]:
    """A Transformer block's keys, the attention's shapes (``check_mha_params``), the layer
    norms' (E,) and the feed-forward's W1 (E, fE), b1 (fE,), W2 (fE, E), b2 (E,).
    Returns (E, fE)."""
    missing = [k for k in BLOCK_PARAMS if k not in shapes]
    if missing:
        raise ValueError(f"params: missing {missing}; expected the keys {list(BLOCK_PARAMS)}")
    e = check_mha_params({k: shapes[k] for k in BLOCK_PARAMS[:8]}, num_heads)
    for name in ("gamma1", "beta1", "gamma2", "beta2"):
        if tuple(shapes[name]) != (e,):
            raise ValueError(f"{name}: expected shape ({e},) to match Wq, "
                             f"got {tuple(shapes[name])}")
    w1 = tuple(shapes["W1"])
    if len(w1) != 2 or w1[0] != e or w1[1] < 1:
        raise ValueError(f"W1: expected shape ({e}, forward_expansion * {e}), got {w1}")
    for name, want in (("b1", (w1[1],)), ("W2", (w1[1], e)), ("b2", (e,))):
        if tuple(shapes[name]) != want:
            raise ValueError(f"{name}: expected shape {want} to match W1 {w1}, "
                             f"got {tuple(shapes[name])}")
    return e, w1[1]


def check_dropout_ratio(ratio: float) -> None:
    """A drop probability in [0, 1)."""
    if not (isinstance(ratio, int | float) and 0 <= ratio < 1):
        raise ValueError(f"dropout: expected a number in [0, 1), got {ratio!r}")


def check_lm_options(vocab_size: int, embed_dim: int, num_heads: int, num_layers: int,
                     forward_expansion: int, context: int) -> None:
    """The Transformer language model's sizes: positive ints, num_heads divides embed_dim."""
    for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim),
                        ("num_heads", num_heads), ("num_layers", num_layers),
                        ("forward_expansion", forward_expansion), ("context", context)):
        check_positive_int(name, value)
    if embed_dim % num_heads:
        raise ValueError(f"num_heads: expected a divisor of embed_dim = {embed_dim}, "
                         f"got {num_heads}")
