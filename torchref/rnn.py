"""Mirror of ``scratch.rnn`` on ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (``batch_first=True``).

Each class *is* the torch module (one layer, one direction), constructed from
the course's arrays: ``Wx = weight_ih_l0.T``, ``Wh = weight_hh_l0.T``.  torch
has two biases where the course's RNN and LSTM have one: the mirror puts ``b``
in ``bias_ih_l0`` and keeps ``bias_hh_l0`` at zero, frozen (no gradient, so an
optimizer moves the effective bias ``b_ih + b_hh`` exactly as the scratch side
moves ``b``).  The GRU has both biases on both sides.  Backward is autograd;
``dWx``, ``dWh``, ``db`` (GRU ``dbx``, ``dbh``), ``dh0`` (LSTM ``dc0``) read the
gradients back in the course's layout.  ``dh0`` is the gradient of the initial
state used: zeros or the carried state (made leaves that require grad), or the
caller's ``h0`` (its ``.grad``; None if it did not require grad).
"""

from __future__ import annotations

import torch
from torch import nn

from scratch._seq_checks import rnn_param_shapes, sequence_shape, state_shape, stored_state_shape
from torchref.functions import check_input_dtype


def _tensors(*arrays: object) -> list[torch.Tensor]:
    return [torch.as_tensor(a) for a in arrays]


class _Recurrent:
    """Shared by the three mirrors: checks, initial states, the course-layout views."""

    kind = ""
    state_names: tuple[str, ...] = ("h0",)
    weight_ih_l0: torch.Tensor
    weight_hh_l0: torch.Tensor
    bias_ih_l0: torch.Tensor
    bias_hh_l0: torch.Tensor

    def _init_state(self, stateful: bool) -> None:
        self.stateful = stateful
        self.state: tuple[torch.Tensor, ...] | None = None
        self.used: tuple[torch.Tensor, ...] = ()

    def reset_state(self) -> None:
        """Forget the carried state: the next ``forward`` starts from zeros."""
        self.state = None

    def _initial(self, xs: torch.Tensor, given: tuple) -> tuple[torch.Tensor, ...]:
        N, _ = sequence_shape(tuple(xs.shape), self.input_size)
        check_input_dtype(xs, self.weight_ih_l0, "xs")
        grad = torch.is_grad_enabled()
        states = []
        for k, (name, s) in enumerate(zip(self.state_names, given, strict=True)):
            if s is not None:
                state_shape(tuple(s.shape), N, self.hidden_size, name)
                if s.requires_grad and not s.is_leaf:
                    s.retain_grad()
            elif self.stateful and self.state is not None:
                stored_state_shape(tuple(self.state[k].shape), N, self.hidden_size, name)
                s = self.state[k].detach().clone().requires_grad_(grad)
            else:
                s = torch.zeros(N, self.hidden_size, dtype=xs.dtype,
                                device=xs.device).requires_grad_(grad)
            states.append(s)
        self.used = tuple(states)
        return tuple(states)

    def load_course(self, Wx: torch.Tensor, Wh: torch.Tensor, bx: torch.Tensor,
                    bh: torch.Tensor | None = None) -> None:
        """Copy course-layout arrays in (``bh`` None: the frozen zero ``bias_hh_l0``)."""
        with torch.no_grad():
            self.weight_ih_l0.copy_(torch.as_tensor(Wx).T)
            self.weight_hh_l0.copy_(torch.as_tensor(Wh).T)
            self.bias_ih_l0.copy_(torch.as_tensor(bx))
            if bh is None:
                self.bias_hh_l0.zero_()
            else:
                self.bias_hh_l0.copy_(torch.as_tensor(bh))

    @property
    def Wx(self) -> torch.Tensor:
        """Input weights (D, G H), a view of ``weight_ih_l0``."""
        return self.weight_ih_l0.T

    @property
    def Wh(self) -> torch.Tensor:
        """Recurrent weights (H, G H), a view of ``weight_hh_l0``."""
        return self.weight_hh_l0.T

    @property
    def dWx(self) -> torch.Tensor | None:
        g = self.weight_ih_l0.grad
        return None if g is None else g.T

    @property
    def dWh(self) -> torch.Tensor | None:
        g = self.weight_hh_l0.grad
        return None if g is None else g.T

    @property
    def dh0(self) -> torch.Tensor | None:
        return self.used[0].grad if self.used else None

    def _keep(self, *final: torch.Tensor) -> None:
        if self.stateful:
            self.state = tuple(s[0].detach() for s in final)


class _OneBias(_Recurrent):
    """RNN and LSTM: the course's single bias ``b`` is ``bias_ih_l0`` (``bias_hh_l0`` = 0)."""

    def _setup(self, Wx: torch.Tensor, Wh: torch.Tensor, b: torch.Tensor, stateful: bool) -> None:
        self.load_course(Wx, Wh, b)
        self.bias_hh_l0.requires_grad_(False)
        self._init_state(stateful)

    @property
    def b(self) -> torch.Tensor:
        return self.bias_ih_l0

    @property
    def db(self) -> torch.Tensor | None:
        return self.bias_ih_l0.grad


class TimeRNN(_OneBias, nn.RNN):
    """``h_t = tanh(x_t Wx + h_{t-1} Wh + b)``; see ``scratch.rnn.TimeRNN``."""

    kind = "RNN"

    def __init__(self, Wx: torch.Tensor, Wh: torch.Tensor, b: torch.Tensor,
                 stateful: bool = False) -> None:
        Wx, Wh, b = _tensors(Wx, Wh, b)
        D, H = rnn_param_shapes(self.kind, tuple(Wx.shape), tuple(Wh.shape), {"b": b.shape})
        nn.RNN.__init__(self, D, H, nonlinearity="tanh", batch_first=True, device=Wx.device,
                        dtype=Wx.dtype)
        self._setup(Wx, Wh, b, stateful)

    def forward(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        (h,) = self._initial(xs, (h0,))
        hs, hT = nn.RNN.forward(self, xs, h[None])
        self._keep(hT)
        return hs


class TimeLSTM(_OneBias, nn.LSTM):
    """LSTM, gates (input, forget, cell, output); see ``scratch.rnn.TimeLSTM``."""

    kind = "LSTM"
    state_names = ("h0", "c0")

    def __init__(self, Wx: torch.Tensor, Wh: torch.Tensor, b: torch.Tensor,
                 stateful: bool = False) -> None:
        Wx, Wh, b = _tensors(Wx, Wh, b)
        D, H = rnn_param_shapes(self.kind, tuple(Wx.shape), tuple(Wh.shape), {"b": b.shape})
        nn.LSTM.__init__(self, D, H, batch_first=True, device=Wx.device, dtype=Wx.dtype)
        self._setup(Wx, Wh, b, stateful)

    def forward(self, xs: torch.Tensor, h0: torch.Tensor | None = None,
                c0: torch.Tensor | None = None) -> torch.Tensor:
        h, c = self._initial(xs, (h0, c0))
        hs, (hT, cT) = nn.LSTM.forward(self, xs, (h[None], c[None]))
        self._keep(hT, cT)
        return hs

    @property
    def dc0(self) -> torch.Tensor | None:
        return self.used[1].grad if self.used else None


class TimeGRU(_Recurrent, nn.GRU):
    """GRU, gates (reset, update, new), two biases; see ``scratch.rnn.TimeGRU``."""

    kind = "GRU"

    def __init__(self, Wx: torch.Tensor, Wh: torch.Tensor, bx: torch.Tensor, bh: torch.Tensor,
                 stateful: bool = False) -> None:
        Wx, Wh, bx, bh = _tensors(Wx, Wh, bx, bh)
        D, H = rnn_param_shapes(self.kind, tuple(Wx.shape), tuple(Wh.shape),
                                {"bx": bx.shape, "bh": bh.shape})
        nn.GRU.__init__(self, D, H, batch_first=True, device=Wx.device, dtype=Wx.dtype)
        self.load_course(Wx, Wh, bx, bh)
        self._init_state(stateful)

    def forward(self, xs: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
        (h,) = self._initial(xs, (h0,))
        hs, hT = nn.GRU.forward(self, xs, h[None])
        self._keep(hT)
        return hs

    @property
    def bx(self) -> torch.Tensor:
        return self.bias_ih_l0

    @property
    def bh(self) -> torch.Tensor:
        return self.bias_hh_l0

    @property
    def dbx(self) -> torch.Tensor | None:
        return self.bias_ih_l0.grad

    @property
    def dbh(self) -> torch.Tensor | None:
        return self.bias_hh_l0.grad


# ---- one time step of each cell: torch ops, autograd for the backward (scratch.rnn's lessons) ----

def rnn_step(xw: torch.Tensor, h_prev: torch.Tensor, Wh: torch.Tensor) -> torch.Tensor:
    """Mirror of ``scratch.rnn.rnn_step``: ``tanh(xw + h_{t-1} Wh)``."""
    return torch.tanh(torch.addmm(xw, h_prev, Wh))


def lstm_step(xw: torch.Tensor, h_prev: torch.Tensor, c_prev: torch.Tensor, Wh: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror of ``scratch.rnn.lstm_step``: (h_t, c_t, gates [i, f, g, o])."""
    a_i, a_f, a_g, a_o = torch.addmm(xw, h_prev, Wh).chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c = f * c_prev + i * g
    return o * torch.tanh(c), c, torch.cat([i, f, g, o], dim=1)


def gru_step(xw: torch.Tensor, h_prev: torch.Tensor, Wh: torch.Tensor, bh: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror of ``scratch.rnn.gru_step``: (h_t, gates [r, z, n], h_{t-1} W_hn + b_hn)."""
    x_r, x_z, x_n = xw.chunk(3, dim=1)
    h_r, h_z, h_n = torch.addmm(bh, h_prev, Wh).chunk(3, dim=1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return n + z * (h_prev - n), torch.cat([r, z, n], dim=1), h_n
