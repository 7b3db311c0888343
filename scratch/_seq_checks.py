"""Argument checks of the sequence layers, shared by ``scratch`` and its torch mirror.

Both sides call these with shapes (tuples of ints), so a bad argument raises
the same ``ValueError`` with the same message on either side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Shape = Sequence[int]


def _t(shape: Shape) -> tuple[int, ...]:
    return tuple(int(s) for s in shape)


def rnn_param_shapes(kind: str, Wx: Shape, Wh: Shape, biases: dict[str, Shape]) -> tuple[int, int]:
    """Check a recurrent layer's parameters; return (D, H).

    ``kind`` is ``"RNN"`` (1 block), ``"LSTM"`` (4 gate blocks) or ``"GRU"`` (3):
    Wx (D, G H), Wh (H, G H), every bias (G H,).
    """
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    Wx, Wh = _t(Wx), _t(Wh)
    if len(Wh) != 2 or Wh[0] < 1 or Wh[1] != gates * Wh[0]:
        raise ValueError(f"Wh: expected shape (H, {gates}H) with H >= 1 for {kind}, got {Wh}")
    H = Wh[0]
    if len(Wx) != 2 or Wx[0] < 1 or Wx[1] != gates * H:
        raise ValueError(f"Wx: expected shape (D, {gates * H}) (D >= 1, {gates}H with H = {H} "
                         f"from Wh) for {kind}, got {Wx}")
    for name, shape in biases.items():
        if _t(shape) != (gates * H,):
            raise ValueError(f"{name}: expected shape ({gates * H},) for {kind} with H = {H}, "
                             f"got {_t(shape)}")
    return Wx[0], H


def sequence_shape(xs: Shape, D: int, name: str = "xs") -> tuple[int, int]:
    """Check a batch-first sequence (N, T, D), N >= 1 and T >= 1; return (N, T)."""
    xs = _t(xs)
    if len(xs) != 3 or xs[0] < 1 or xs[1] < 1 or xs[2] != D:
        raise ValueError(f"{name}: expected shape (N, T, {D}) (batch, time, features) with "
                         f"N >= 1 and T >= 1, got {xs}")
    return xs[0], xs[1]


def state_shape(state: Shape, N: int, H: int, name: str = "h0") -> None:
    """Check an initial state (N, H)."""
    if _t(state) != (N, H):
        raise ValueError(f"{name}: expected shape ({N}, {H}) (batch, hidden) to match xs, "
                         f"got {_t(state)}")


def stored_state_shape(state: Shape, N: int, H: int, name: str = "h0") -> None:
    """Check the state a ``stateful`` layer carried over from its previous batch."""
    if _t(state) != (N, H):
        raise ValueError(f"{name}: the state carried by stateful=True has shape {_t(state)}, "
                         f"but xs has batch size {N}; call reset_state() before a batch of "
                         f"another size")


def embedding_index(idx_min: int, idx_max: int, V: int, is_integer: bool) -> None:
    """Check the indices of an embedding lookup: integers in [0, V)."""
    if not is_integer:
        raise ValueError("idx: expected an integer array of token indices")
    if idx_min < 0 or idx_max >= V:
        raise ValueError(f"idx: expected indices in [0, {V}) (the vocabulary size), got "
                         f"min {idx_min}, max {idx_max}")


def time_targets(xs: Shape, ts: Shape, ts_is_integer: bool, ts_min: int, ts_max: int,
                 ignore_index: int, ts_bad: bool) -> None:
    """Check per-step scores xs (N, T, C) and integer targets ts (N, T) in [0, C) or ignored."""
    xs, ts = _t(xs), _t(ts)
    if len(xs) != 3 or xs[2] < 1:
        raise ValueError(f"xs: expected scores of shape (N, T, C) with C >= 1, got {xs}")
    if ts != xs[:2]:
        raise ValueError(f"ts: expected integer targets of shape {xs[:2]} (N, T), got {ts}")
    if not ts_is_integer:
        raise ValueError("ts: expected integer class indices")
    if ts_bad:
        raise ValueError(f"ts: expected class indices in [0, {xs[2]}) or ignore_index "
                         f"{ignore_index}, got min {ts_min}, max {ts_max}")


def time_affine_input(xs: Shape, D: int) -> None:
    """Check the input (N, T, D) of a per-step affine layer."""
    xs = _t(xs)
    if len(xs) != 3 or xs[2] != D:
        raise ValueError(f"xs: expected shape (N, T, {D}), got {xs}")


def check_time_targets(xs_shape: Shape, ts: np.ndarray, ignore_index: int) -> None:
    """The shared check of per-step targets (the torch side calls it with the same numbers)."""
    integer = np.issubdtype(ts.dtype, np.integer)
    C = xs_shape[-1] if len(xs_shape) == 3 else 0
    counted = ts[ts != ignore_index] if integer else ts[:0]
    lo, hi = (int(counted.min()), int(counted.max())) if counted.size else (0, 0)
    bad = bool(counted.size) and (lo < 0 or hi >= C)
    time_targets(xs_shape, ts.shape, integer, lo, hi, ignore_index, bad)


def sequence_view_shape(shape: Shape, input_size: int, name: str = "x") -> tuple[int, int, int]:
    """(N, T, D) for x of ``shape``: (N, T, D), or (N, ...) with a multiple of D features."""
    shape = _t(shape)
    per_sample = int(np.prod(shape[1:])) if len(shape) >= 2 else 0
    if len(shape) < 2 or per_sample == 0 or per_sample % input_size:
        raise ValueError(f"{name}: expected (N, T, {input_size}) or (N, ...) with a multiple of "
                         f"{input_size} features per sample, got {shape}")
    return shape[0], per_sample // input_size, input_size
