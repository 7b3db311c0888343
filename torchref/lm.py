"""Mirror of ``scratch.lm``: Embedding -> TimeLSTM(stateful) -> TimeAffine -> cross-entropy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from torchref.embedding import Embedding
from torchref.rnn import TimeLSTM
from torchref.time_layers import TimeAffine, TimeSoftmaxWithLoss

if TYPE_CHECKING:
    import scratch.lm


class LSTMLM(nn.Module):
    """See ``scratch.lm.LSTMLM``; build it with ``from_scratch`` (the weights come from there)."""

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        V, E, H = vocab_size, wordvec_size, hidden_size
        self.vocab_size, self.wordvec_size, self.hidden_size = V, E, H

        def z(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, dtype=dtype)
        self.embed = Embedding(z(V, E))
        self.lstm = TimeLSTM(z(E, 4 * H), z(H, 4 * H), z(4 * H), stateful=True)
        self.affine = TimeAffine(z(H, V), z(V))
        self.last_layer = TimeSoftmaxWithLoss()
        self.to(device=device)

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """Course-layout views, keyed as ``scratch.lm.LSTMLM.params``."""
        return {"embed_W": self.embed.W, "Wx": self.lstm.Wx, "Wh": self.lstm.Wh,
                "b": self.lstm.b, "W": self.affine.W, "b_out": self.affine.b}

    def reset_state(self) -> None:
        self.lstm.reset_state()

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        return self.affine(self.lstm(self.embed(xs)))

    def loss(self, xs: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self(xs), ts)

    @torch.no_grad()
    def generate(self, start: list[int], length: int, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> list[int]:
        """``start`` followed by ``length`` sampled tokens (state reset before and after)."""
        device = self.embed.weight.device
        self.reset_state()
        out = list(start)
        scores = self(torch.tensor([start], device=device))[0, -1]
        for _ in range(length):
            p = torch.softmax(scores.double() / temperature, dim=-1).cpu()
            out.append(int(torch.multinomial(p, 1, generator=generator)))
            scores = self(torch.tensor([[out[-1]]], device=device))[0, -1]
        self.reset_state()
        return out

    @classmethod
    def from_scratch(cls, model: scratch.lm.LSTMLM, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> LSTMLM:
        """The torch model with the scratch model's exact weights (``torchref.convert``)."""
        from torchref.convert import copy_params
        dtype = dtype or torch.from_numpy(model.params["Wx"][:0]).dtype
        tmodel = cls(model.vocab_size, model.wordvec_size, model.hidden_size, dtype=dtype,
                     device=device)
        copy_params(tmodel, model.params)
        return tmodel
