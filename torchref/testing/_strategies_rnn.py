"""Hypothesis strategies of the recurrent components (re-exported by ``strategies``).

Shapes by construction: batch 1 to 3, hidden 1 to 5 (also larger than the
input size D, 1 to 4), sequences of length 1 to 6 or 50 to 55 (backprop
through many steps).  Weights are scaled by 1/sqrt(H) (torch's init scale): with recurrent
weights of scale 3 the float32 RNN and GRU are chaotic over 50 steps and the
two sides' different rounding grows past the policy, a property of the
dynamics, not a bug (measured in ``torchref.tolerance``, "Recurrent layers").

``nonfinite`` (default on): half the examples carry +inf/-inf/NaN in the inputs (not in the
parameters) and the upstream gradient holds such values (``torchref.testing._nonfinite``).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torchref.parity import Case
from torchref.testing._nonfinite import dout_edges, maybe_nonfinite


# (strategies.py re-exports this module at its end, so this module imports nothing from it)
def _arrays(dtype: type, shape: tuple[int, ...], bound: float = 10.0) -> st.SearchStrategy:
    """Arrays of finite values in [-bound, bound] (``strategies.arrays``)."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=st.floats(-bound, bound, allow_nan=False,
                                                        allow_infinity=False, width=width))


def _case(*args: object, init: tuple = (), edges: bool = False, **kwargs: object) -> Case:
    return Case(tuple(args), tuple(init), kwargs, edges)

GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

lengths = st.one_of(st.integers(1, 6), st.integers(50, 55))


@st.composite
def rnn_params(draw: st.DrawFn, dtype: type, kind: str, D: int, H: int) -> tuple:
    """(Wx, Wh, b) or, for the GRU, (Wx, Wh, bx, bh): weights in [-1, 1] / sqrt(H)."""
    G = GATES[kind]
    scale = 1.0 / np.sqrt(H)
    Wx = (draw(_arrays(dtype, (D, G * H), 1.0)) * scale).astype(dtype)
    Wh = (draw(_arrays(dtype, (H, G * H), 1.0)) * scale).astype(dtype)
    biases = [draw(_arrays(dtype, (G * H,), 1.0)) for _ in range(2 if kind == "GRU" else 1)]
    return (Wx, Wh, *biases)


@st.composite
def rnn_case(draw: st.DrawFn, dtype: type, kind: str = "LSTM", max_n: int = 3,
             max_d: int = 4, max_h: int = 5, nonfinite: bool = True) -> object:
    """A recurrent layer's init (its parameters) and args (xs (N, T, D), h0 (N, H)
    and, for the LSTM, c0 (N, H)); zeros for the initial state half of the time."""
    N, T = draw(st.integers(1, max_n)), draw(lengths)
    D, H = draw(st.integers(1, max_d)), draw(st.integers(1, max_h))
    init = draw(rnn_params(dtype, kind, D, H))
    xs = draw(maybe_nonfinite(draw(_arrays(dtype, (N, T, D), 3.0)), nonfinite))
    states = []
    for _ in range(2 if kind == "LSTM" else 1):
        zero = draw(st.booleans())
        state = np.zeros((N, H), dtype) if zero else draw(_arrays(dtype, (N, H), 2.0))
        states.append(draw(maybe_nonfinite(state, nonfinite)))
    return _case(xs, *states, init=init, edges=draw(dout_edges(nonfinite)))


@st.composite
def embedding_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """W (V, D) and integer indices of 1 to 3 dimensions (repeats likely: V is small)."""
    V, D = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    idx = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, V - 1)))
    W = draw(maybe_nonfinite(draw(_arrays(dtype, (V, D))), nonfinite))
    return _case(idx, init=(W,), edges=draw(dout_edges(nonfinite)))


@st.composite
def time_affine_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """xs (N, T, D) and the layer's W (D, M), b (M,)."""
    N, T = draw(st.integers(1, 3)), draw(lengths)
    D, M = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return _case(draw(maybe_nonfinite(draw(_arrays(dtype, (N, T, D))), nonfinite)),
                 init=(draw(_arrays(dtype, (D, M))), draw(_arrays(dtype, (M,)))),
                 edges=draw(dout_edges(nonfinite)))


@st.composite
def time_targets_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """Scores xs (N, T, C) (unit or huge), targets ts (N, T) with padding, init (ignore_index,).

    ignore_index is torch's -100, the course's -1, or 0 (a real class, then never a
    target); at least one step is counted (all ignored gives nan: its own test).
    Non-finite scores only at counted steps (at an ignored step a +inf, a NaN or an all -inf
    row makes torch's gradient of that step NaN, see ``torchref.tolerance``); a loss's dout
    is a finite scalar.
    """
    N, T, C = draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 6))
    ignore = draw(st.sampled_from([-100, -1, 0]))
    lo = 1 if ignore == 0 else 0
    C = max(C, lo + 1)
    ts = draw(hnp.arrays(np.int64, (N, T), elements=st.integers(lo, C - 1)))
    pad = draw(hnp.arrays(np.bool_, (N, T)))
    pad.flat[draw(st.integers(0, N * T - 1))] = False          # one counted step
    ts = np.where(pad, ignore, ts)
    bound = draw(st.sampled_from([10.0, 1e4]))
    xs = draw(_arrays(dtype, (N, T, C), bound))
    edged = draw(maybe_nonfinite(xs, nonfinite))
    keep = pad[..., None] & ~np.isfinite(edged)
    return _case(np.where(keep, xs, edged).astype(dtype), ts, init=(ignore,))


@st.composite
def clip_grads_case(draw: st.DrawFn, dtype: type, nonfinite: bool = True) -> object:
    """1 to 3 gradient arrays (zeros included) and max_norm: the global norm drawn below
    and above it."""
    shapes = draw(st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple),
                           min_size=1, max_size=3))
    grads = [draw(maybe_nonfinite(draw(_arrays(dtype, s, draw(st.sampled_from(
        [2.0**-10, 1.0, 100.0])))), nonfinite)) for s in shapes]
    max_norm = draw(st.sampled_from([0.1, 1.0, 5.0]) | st.floats(1e-3, 1e3))
    return _case(*grads, max_norm=max_norm)


@st.composite
def lstm_classifier_case(draw: st.DrawFn, dtype: type, cell: str = "lstm",
                         nonfinite: bool = True) -> object:
    """A small sequence classifier: init (kwargs, seed), args (xs (N, T, D), labels (N,))."""
    N, T = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    D, H, C = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 4))
    xs = draw(maybe_nonfinite(draw(_arrays(dtype, (N, T, D), 2.0)), nonfinite))
    t = draw(hnp.arrays(np.int64, (N,), elements=st.integers(0, C - 1)))
    kwargs = {"input_size": D, "hidden_size": H, "output_size": C, "cell": cell}
    return _case(xs, t, init=(kwargs, draw(st.integers(0, 2**32 - 1))))


@st.composite
def nonfinite_sequence(draw: st.DrawFn, dtype: type, N: int, T: int, D: int) -> np.ndarray:
    """xs (N, T, D) with +-inf or nan at a few drawn positions (the rest finite)."""
    xs = draw(_arrays(dtype, (N, T, D), 2.0))
    for _ in range(draw(st.integers(1, 3))):
        xs[draw(st.integers(0, N - 1)), draw(st.integers(0, T - 1)),
           draw(st.integers(0, D - 1))] = draw(st.sampled_from([np.inf, -np.inf, np.nan]))
    return xs


__all__ = ["GATES", "clip_grads_case", "embedding_case", "lengths",
           "lstm_classifier_case", "nonfinite_sequence", "rnn_case", "rnn_params",
           "time_affine_case", "time_targets_case"]
