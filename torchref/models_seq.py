"""Mirror of ``scratch.models_seq``: ``torchref.rnn`` layer -> last state -> ``Affine``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._seq_checks import sequence_view_shape
from scratch.models_seq import GATES, check_cell, check_sizes
from torchref import convert
from torchref.gradient import params_numerical_gradient
from torchref.layers import Affine, SoftmaxWithLoss
from torchref.rnn import TimeGRU, TimeLSTM, TimeRNN

if TYPE_CHECKING:
    import scratch.models_seq

CELLS = {"lstm": TimeLSTM, "gru": TimeGRU, "rnn": TimeRNN}


def sequence_view(x: torch.Tensor, input_size: int, name: str = "x") -> torch.Tensor:
    """x (N, T, D), or (N, ...) with a multiple of D features per sample -> (N, T, D)."""
    return x.reshape(sequence_view_shape(tuple(x.shape), input_size, name))


class LSTMClassifier(nn.Module):
    """See ``scratch.models_seq.LSTMClassifier``; same constructor plus ``device``.

    The weights are drawn from torch's generator (same distributions as the
    scratch side, not the same numbers); use ``from_scratch`` for identical ones.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 cell: str = "lstm", seed: int | None = None,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        check_cell(cell)
        check_sizes(input_size, hidden_size, output_size)
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.cell = cell
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        D, H, G = input_size, hidden_size, GATES[cell]
        k = 1.0 / H ** 0.5

        def uniform(*shape: int) -> torch.Tensor:
            return (torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1) * k

        zeros = torch.zeros(G * H, dtype=dtype)
        biases = (zeros, zeros) if cell == "gru" else (zeros,)
        self.rnn = CELLS[cell](uniform(D, G * H), uniform(H, G * H), *biases)
        self.affine = Affine(torch.randn(H, output_size, generator=gen, dtype=dtype) * k,
                             torch.zeros(output_size, dtype=dtype))
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Course-layout views, keyed as ``scratch.models_seq.LSTMClassifier.params``."""
        out = {"Wx": self.rnn.Wx, "Wh": self.rnn.Wh}
        if self.cell == "gru":
            out["bx"], out["bh"] = self.rnn.bx, self.rnn.bh
        else:
            out["b"] = self.rnn.b
        out["W"], out["b_out"] = self.affine.W, self.affine.b
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = self.rnn(sequence_view(x, self.input_size))
        return self.affine(hs[:, -1])

    def predict(self, x: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        return self(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        return self.last_layer(self(x), t)

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss(x, t)`` by autograd, keyed and laid out like ``params``."""
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            self.loss(x, t).backward()
        grads = {"Wx": self.rnn.dWx, "Wh": self.rnn.dWh}
        if self.cell == "gru":
            grads["bx"], grads["bh"] = self.rnn.dbx, self.rnn.dbh
        else:
            grads["b"] = self.rnn.db
        grads["W"], grads["b_out"] = self.affine.dW, self.affine.db
        return {k: g.clone() for k, g in grads.items()}

    @torch.no_grad()
    def numerical_gradient(self, x: torch.Tensor, t: torch.Tensor,
                           h: float = 1e-4) -> dict[str, torch.Tensor]:
        return params_numerical_gradient(lambda: self.loss(x, t), self.params, h)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor) -> float:
        y = self(x)
        labels = t.argmax(dim=-1) if t.shape == y.shape else t
        return float((y.argmax(dim=-1) == labels).double().mean())

    @classmethod
    def from_scratch(cls, model: scratch.models_seq.LSTMClassifier,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> LSTMClassifier:
        """The torch model with ``model``'s exact weights (see ``torchref.convert``)."""
        if dtype is None:
            dtype = torch.from_numpy(model.params["Wx"][:0]).dtype
        tmodel = cls(model.input_size, model.hidden_size, model.output_size, cell=model.cell,
                     dtype=dtype, device=device)
        return convert.load_seq_classifier(tmodel, model)

    def to_scratch(self) -> scratch.models_seq.LSTMClassifier:
        return convert.seq_classifier_to_scratch(self)
