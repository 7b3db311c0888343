"""Recurrent layers over whole sequences, with backprop through time written out.

Sequences are batch-first: ``xs`` (N, T, D) in, hidden states ``hs`` (N, T, H)
out, as ``torch.nn.RNN/LSTM/GRU(batch_first=True)``.  Each layer is a loop of
one tiny *cell* over the time steps; the cell's backward sits right beside its
forward, and the layer's ``backward`` walks the steps in reverse, carrying
``dh`` (and the LSTM's ``dc``) from step t back to step t - 1.

Two things make the loop fast without hiding it (the course's sequel does the
same):

* the input projection ``x_t Wx + b`` does not depend on the previous state,
  so it is computed for every step at once, ``xs @ Wx + b`` (one matmul of
  (N T, D) by (D, G H)), before the loop; only ``h_{t-1} Wh`` stays inside;
* in backward, each step only records ``da_t`` (the gradient at the gates'
  pre-activation); ``dWx = sum_t x_t^T da_t``, ``dWh = sum_t h_{t-1}^T da_t``
  and ``db = sum_t sum_n da_t`` are then one matmul (or sum) each over all
  steps, and ``dxs = da Wx^T`` too.

``stateful=True`` keeps the last state and starts the next ``forward`` from it
(truncated backprop through time: the gradient stops at the batch boundary,
as ``h.detach()`` does in torch); ``reset_state()`` forgets it.  A given
``h0`` always wins over the carried state.  ``dh0`` (LSTM also ``dc0``) is the
gradient with respect to the initial state that was used.
"""

from __future__ import annotations

import numpy as np

from scratch._checks import check_dout, forward_cache
from scratch._seq_checks import rnn_param_shapes, sequence_shape, state_shape, stored_state_shape
from scratch.functions import as_float_array


def _shifted(h0: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """h_{t-1} for every t: (h0, h_1, ..., h_{T-1}) as (N, T, H)."""
    return np.concatenate([h0[:, None, :], hs[:, :-1, :]], axis=1)


def _flat_t(a: np.ndarray) -> np.ndarray:
    """(N, T, K) -> (N T, K): all steps as one batch, for the hoisted matmuls."""
    return a.reshape(-1, a.shape[-1])


def _project(xs: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``xs @ W (+ b)`` for xs (N, T, K) as one (N T, K) matmul (one BLAS call, not N)."""
    out = _flat_t(xs) @ W
    if b is not None:
        out = out + b
    return out.reshape(*xs.shape[:2], W.shape[1])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``sigmoid(x) = (1 + tanh(x / 2)) / 2``: the identity ``scratch.functions.sigmoid``
    computes with two exps and a where; one tanh here (it saturates, never overflows),
    which matters inside the time loop."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


class _TimeRecurrent:
    """What the three layers share: argument checks, the carried state, the hoisted sums."""

    kind = ""
    state_names: tuple[str, ...] = ("h0",)

    def _setup(self, Wx: np.ndarray, Wh: np.ndarray, biases: dict[str, np.ndarray],
               stateful: bool) -> None:
        self.D, self.H = rnn_param_shapes(self.kind, np.shape(Wx), np.shape(Wh),
                                          {k: np.shape(v) for k, v in biases.items()})
        self.Wx, self.Wh = Wx, Wh
        self.stateful = stateful
        self.state: tuple[np.ndarray, ...] | None = None   # carried over when stateful
        self.xs: np.ndarray | None = None
        self.dWx = self.dWh = None

    def reset_state(self) -> None:
        """Forget the carried state: the next ``forward`` starts from zeros."""
        self.state = None

    def _initial(self, xs: np.ndarray, given: tuple) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """xs as floats (checked) and the initial state(s): given, carried, or zeros."""
        xs = as_float_array(xs)
        N, _ = sequence_shape(xs.shape, self.D)
        dtype = np.result_type(xs.dtype, self.Wx.dtype)
        states = []
        for k, (name, s) in enumerate(zip(self.state_names, given, strict=True)):
            if s is not None:
                s = as_float_array(s)
                state_shape(s.shape, N, self.H, name)
            elif self.stateful and self.state is not None:
                s = self.state[k]
                stored_state_shape(s.shape, N, self.H, name)
            else:
                s = np.zeros((N, self.H), dtype=dtype)
            states.append(s)
        return xs, tuple(states)

    def _param_grads(self, xs: np.ndarray, h_prev: np.ndarray, dxw: np.ndarray,
                     dhw: np.ndarray) -> np.ndarray:
        """The hoisted sums over all steps: dWx, dWh; returns dxs."""
        self.dWx = _flat_t(xs).T @ _flat_t(dxw)
        self.dWh = _flat_t(h_prev).T @ _flat_t(dhw)
        return _project(dxw, self.Wx.T)


# ---- the vanilla RNN ---------------------------------------------------------------------------

def rnn_step(xw: np.ndarray, h_prev: np.ndarray, Wh: np.ndarray) -> np.ndarray:
    """``h_t = tanh(a_t)``, ``a_t = x_t Wx + b + h_{t-1} Wh`` (xw = x_t Wx + b, precomputed)."""
    return np.tanh(xw + h_prev @ Wh)


def rnn_step_backward(dh: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``da_t = dh_t (1 - h_t^2)`` (tanh' from its output); then dh_{t-1} = da_t Wh^T."""
    return dh * (1.0 - h * h)


class TimeRNN(_TimeRecurrent):
    """``h_t = tanh(x_t Wx + h_{t-1} Wh + b)`` over T steps (``nn.RNN(nonlinearity="tanh")``).

    Wx (D, H), Wh (H, H), b (H,); torch's two biases ``b_ih + b_hh`` are one here.
    ``forward(xs, h0=None)``: xs (N, T, D), h0 (N, H) -> hs (N, T, H).
    ``backward(dhs)`` -> dxs; sets dWx, dWh, db, dh0.  Backward through time:
    ``dh_t`` = dhs_t + (from step t + 1) ``da_{t+1} Wh^T``.
    """

    kind = "RNN"

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                 stateful: bool = False) -> None:
        self._setup(Wx, Wh, {"b": b}, stateful)
        self.b = b
        self.db = self.dh0 = None

    def forward(self, xs: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
        xs, (h,) = self._initial(xs, (h0,))
        xw = _project(xs, self.Wx, self.b)   # hoisted: every step's input projection
        hs = np.empty(xw.shape, dtype=xw.dtype)
        self.xs, self.initial = xs, (h,)
        for t in range(xs.shape[1]):
            h = hs[:, t] = rnn_step(xw[:, t], h, self.Wh)
        self.hs = hs
        if self.stateful:
            self.state = (hs[:, -1].copy(),)
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        xs, hs = forward_cache(self, "xs"), self.hs
        check_dout(self, np.shape(dhs), hs.shape)
        da = np.empty_like(hs)
        dh = np.zeros_like(hs[:, 0])
        for t in reversed(range(hs.shape[1])):
            da[:, t] = rnn_step_backward(dh + dhs[:, t], hs[:, t])
            dh = da[:, t] @ self.Wh.T               # into step t - 1
        self.dh0, self.db = dh, da.sum(axis=(0, 1))
        return self._param_grads(xs, _shifted(self.initial[0], hs), da, da)


# ---- LSTM, gate blocks in PyTorch's order: input, forget, cell (g), output ---------------------

def lstm_step(xw: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray,
              Wh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM step; returns (h_t, c_t, gates) with gates = [i, f, g, o] (N, 4H).

        a = x_t Wx + b + h_{t-1} Wh = [a_i, a_f, a_g, a_o]
        i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g)
        c_t = f c_{t-1} + i g,             h_t = o tanh(c_t)
    """
    H = h_prev.shape[1]
    a = xw + h_prev @ Wh
    gates = np.empty_like(a)
    gates[:, :2 * H] = _sigmoid(a[:, :2 * H])
    gates[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
    gates[:, 3 * H:] = _sigmoid(a[:, 3 * H:])
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    c = f * c_prev + i * g
    return o * np.tanh(c), c, gates


def lstm_step_backward(dh: np.ndarray, dc: np.ndarray, gates: np.ndarray, c_prev: np.ndarray,
                       c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward of ``lstm_step``: returns (da (N, 4H), dc_{t-1}); dh_{t-1} = da Wh^T.

        tc = tanh(c_t);  do = dh tc;  dc_t += dh o (1 - tc^2)     (h = o tanh c)
        di = dc g,  df = dc c_{t-1},  dg = dc i,  dc_{t-1} = dc f   (c = f c' + i g)
        da = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]         (sigmoid', tanh')
    """
    H = c.shape[1]
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    tc = np.tanh(c)
    dc = dc + dh * o * (1.0 - tc * tc)
    da = np.empty_like(gates)
    da[:, :H] = dc * g * i * (1.0 - i)
    da[:, H:2 * H] = dc * c_prev * f * (1.0 - f)
    da[:, 2 * H:3 * H] = dc * i * (1.0 - g * g)
    da[:, 3 * H:] = dh * tc * o * (1.0 - o)
    return da, dc * f


class TimeLSTM(_TimeRecurrent):
    """Long short-term memory over T steps (``nn.LSTM``); see ``lstm_step`` for the cell.

    Wx (D, 4H), Wh (H, 4H), b (4H,), gate blocks in PyTorch's order (input,
    forget, cell, output): ``Wx = weight_ih_l0.T``, ``Wh = weight_hh_l0.T``,
    ``b = bias_ih_l0 + bias_hh_l0``.  ``forward(xs, h0=None, c0=None)`` -> hs
    (N, T, H).  ``backward(dhs)`` -> dxs; sets dWx, dWh, db, dh0, dc0.  The
    cell state gets no gradient from outside (only hs is an output), so ``dc``
    starts at 0 after the last step.
    """

    kind = "LSTM"
    state_names = ("h0", "c0")

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                 stateful: bool = False) -> None:
        self._setup(Wx, Wh, {"b": b}, stateful)
        self.b = b
        self.db = self.dh0 = self.dc0 = None

    def forward(self, xs: np.ndarray, h0: np.ndarray | None = None,
                c0: np.ndarray | None = None) -> np.ndarray:
        xs, (h, c) = self._initial(xs, (h0, c0))
        xw = _project(xs, self.Wx, self.b)   # hoisted: every step's input projection
        N, T, _ = xw.shape
        hs = np.empty((N, T, self.H), dtype=xw.dtype)
        cs = np.empty_like(hs)
        self.gates = np.empty_like(xw)
        self.xs, self.initial = xs, (h, c)
        for t in range(T):
            h, c, self.gates[:, t] = lstm_step(xw[:, t], h, c, self.Wh)
            hs[:, t], cs[:, t] = h, c
        self.hs, self.cs = hs, cs
        if self.stateful:
            self.state = (h.copy(), c.copy())
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        xs, hs, cs = forward_cache(self, "xs"), self.hs, self.cs
        check_dout(self, np.shape(dhs), hs.shape)
        c_prev = _shifted(self.initial[1], cs)
        da = np.empty_like(self.gates)
        dh, dc = np.zeros_like(hs[:, 0]), np.zeros_like(hs[:, 0])
        for t in reversed(range(hs.shape[1])):
            da[:, t], dc = lstm_step_backward(dh + dhs[:, t], dc, self.gates[:, t],
                                              c_prev[:, t], cs[:, t])
            dh = da[:, t] @ self.Wh.T               # into step t - 1
        self.dh0, self.dc0, self.db = dh, dc, da.sum(axis=(0, 1))
        return self._param_grads(xs, _shifted(self.initial[0], hs), da, da)


# ---- GRU, PyTorch's formulation, gate blocks in PyTorch's order: reset, update, new -----------

def gru_step(xw: np.ndarray, h_prev: np.ndarray, Wh: np.ndarray,
             bh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One GRU step; returns (h_t, gates [r, z, n] (N, 3H), hn = h_{t-1} W_hn + b_hn).

        xw = x_t Wx + bx = [x_r, x_z, x_n],  hw = h_{t-1} Wh + bh = [h_r, h_z, h_n]
        r = sigmoid(x_r + h_r),  z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)            (the reset gate multiplies h_n *with* its bias)
        h_t = (1 - z) n + z h_{t-1}
    """
    H = h_prev.shape[1]
    hw = h_prev @ Wh + bh
    gates = np.empty_like(hw)
    gates[:, :2 * H] = _sigmoid(xw[:, :2 * H] + hw[:, :2 * H])
    r, z = gates[:, :H], gates[:, H:2 * H]
    hn = hw[:, 2 * H:]
    n = gates[:, 2 * H:] = np.tanh(xw[:, 2 * H:] + r * hn)
    return n + z * (h_prev - n), gates, hn


def gru_step_backward(dh: np.ndarray, h_prev: np.ndarray, gates: np.ndarray,
                      hn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of ``gru_step``: returns (dxw, dhw, dh_{t-1} without the Wh path).

        dn = dh - z dh,  dz = dh (h_{t-1} - n),  dh_{t-1} = dh z  (+ dhw Wh^T, by the caller)

    (dn is the two paths of n in ``n + z (h_{t-1} - n)``, summed as written, as autograd
    does: for an infinite dh that is inf - inf = NaN, like torch; ``dh (1 - z)`` would be inf.)
        da_n = dn (1 - n^2);  da_r = da_n h_n r (1 - r);  da_z = dz z (1 - z)
        dxw = [da_r, da_z, da_n],  dhw = [da_r, da_z, da_n r]
    """
    H = h_prev.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dan = (dh - z * dh) * (1.0 - n * n)
    dxw = np.empty_like(gates)
    dxw[:, :H] = dan * hn * r * (1.0 - r)
    dxw[:, H:2 * H] = dh * (h_prev - n) * z * (1.0 - z)
    dxw[:, 2 * H:] = dan
    dhw = dxw.copy()
    dhw[:, 2 * H:] = dan * r
    return dxw, dhw, dh * z


class TimeGRU(_TimeRecurrent):
    """Gated recurrent unit over T steps (``nn.GRU``); see ``gru_step`` for the cell.

    Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,), gate blocks in PyTorch's order
    (reset, update, new): ``Wx = weight_ih_l0.T``, ``bx = bias_ih_l0``, ...
    Two biases, as torch's: b_hn sits inside the reset gate's product, so it is
    not interchangeable with b_in.  ``forward(xs, h0=None)`` -> hs (N, T, H);
    ``backward(dhs)`` -> dxs; sets dWx, dWh, dbx, dbh, dh0.
    """

    kind = "GRU"

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, bx: np.ndarray, bh: np.ndarray,
                 stateful: bool = False) -> None:
        self._setup(Wx, Wh, {"bx": bx, "bh": bh}, stateful)
        self.bx, self.bh = bx, bh
        self.dbx = self.dbh = self.dh0 = None

    def forward(self, xs: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
        xs, (h,) = self._initial(xs, (h0,))
        xw = _project(xs, self.Wx, self.bx)  # hoisted: every step's input projection
        N, T, _ = xw.shape
        hs = np.empty((N, T, self.H), dtype=xw.dtype)
        self.gates, self.hn = np.empty_like(xw), np.empty_like(hs)
        self.xs, self.initial = xs, (h,)
        for t in range(T):
            h, self.gates[:, t], self.hn[:, t] = gru_step(xw[:, t], h, self.Wh, self.bh)
            hs[:, t] = h
        self.hs = hs
        if self.stateful:
            self.state = (h.copy(),)
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        xs, hs = forward_cache(self, "xs"), self.hs
        check_dout(self, np.shape(dhs), hs.shape)
        h_prev = _shifted(self.initial[0], hs)
        dxw, dhw = np.empty_like(self.gates), np.empty_like(self.gates)
        dh = np.zeros_like(hs[:, 0])
        for t in reversed(range(hs.shape[1])):
            dxw[:, t], dhw[:, t], dh_direct = gru_step_backward(
                dh + dhs[:, t], h_prev[:, t], self.gates[:, t], self.hn[:, t])
            dh = dh_direct + dhw[:, t] @ self.Wh.T  # into step t - 1
        self.dh0 = dh
        self.dbx, self.dbh = dxw.sum(axis=(0, 1)), dhw.sum(axis=(0, 1))
        return self._param_grads(xs, h_prev, dxw, dhw)
