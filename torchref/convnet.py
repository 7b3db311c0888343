"""Mirror of ``scratch.convnet.SimpleConvNet`` as an ``nn.Module``, same methods.

``params`` returns W1..W3, b1..b3 in the course's layout (views of the module's
parameters: the conv weight as it is, the Affine weights transposed back to
(in, out)); ``gradient`` is autograd in the same layout.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._checks import DEFAULT_CONV, conv_net_shapes
from torchref.conv import Convolution, Pooling
from torchref.gradient import numerical_gradient as _numerical_gradient
from torchref.init import init_weight_
from torchref.layers import Affine, Relu, SoftmaxWithLoss

if TYPE_CHECKING:
    import scratch.convnet

LAYER_OF = {"1": "Conv1", "2": "Affine1", "3": "Affine2"}


class SimpleConvNet(nn.Module):
    """conv - relu - pool(2x2) - affine - relu - affine; see ``scratch.convnet.SimpleConvNet``."""

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: dict | None = None,
                 hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float | str = 0.01, seed: int | None = None,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.input_dim = tuple(int(v) for v in input_dim)
        self.conv_param = {**DEFAULT_CONV, **(conv_param or {})}
        self.hidden_size, self.output_size = int(hidden_size), int(output_size)
        s = conv_net_shapes(self.input_dim, self.conv_param, self.hidden_size, self.output_size)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        W1, W2, W3 = (torch.empty(s[k], dtype=dtype) for k in ("W1", "W2", "W3"))
        for W in (W1, W2.T, W3.T):            # torch layout: fan_in over dims 1...
            init_weight_(W, "relu", weight_init_std, gen)
        zeros = {k: torch.zeros(s[k], dtype=dtype) for k in ("b1", "b2", "b3")}
        cp = self.conv_param
        self.layers = nn.Sequential(OrderedDict([
            ("Conv1", Convolution(W1, zeros["b1"], cp["stride"], cp["pad"], input_grad=False)),
            ("Relu1", Relu()),
            ("Pool1", Pooling(2, 2, stride=2)),
            ("Affine1", Affine(W2, zeros["b2"])),
            ("Relu2", Relu()),
            ("Affine2", Affine(W3, zeros["b3"])),
        ]))
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """W1..W3, b1..b3 in the course's layout (views of the parameters)."""
        out: dict[str, torch.Tensor] = {}
        for i, name in LAYER_OF.items():
            layer = self.layers.get_submodule(name)
            out[f"W{i}"], out[f"b{i}"] = layer.W, layer.b
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, output_size)."""
        return self(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.predict(x), t)

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss(x, t)`` by autograd, keyed and laid out like ``params``."""
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            self.loss(x, t).backward()
        grads: dict[str, torch.Tensor] = {}
        for i, name in LAYER_OF.items():
            layer = self.layers.get_submodule(name)
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW.clone(), layer.db.clone()
        return grads

    @torch.no_grad()
    def numerical_gradient(self, x: torch.Tensor, t: torch.Tensor,
                           h: float = 1e-4) -> dict[str, torch.Tensor]:
        grads = {}
        for key, value in self.params.items():
            saved = value.detach().clone()

            def loss_at(w: torch.Tensor, value: torch.Tensor = value) -> torch.Tensor:
                value.copy_(w)
                return self.loss(x, t)
            try:
                grads[key] = _numerical_gradient(loss_at, saved, h)
            finally:
                value.copy_(saved)
        return grads

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor, batch_size: int = 1000) -> float:
        correct = 0
        for i in range(0, len(x), batch_size):
            y, tb = self.predict(x[i:i + batch_size]), t[i:i + batch_size]
            labels = tb.argmax(dim=-1) if tb.shape == y.shape else tb
            correct += int((y.argmax(dim=-1) == labels).sum())
        return correct / len(x)

    @classmethod
    def from_scratch(cls, model: scratch.convnet.SimpleConvNet,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> SimpleConvNet:
        """The torch model with ``model``'s exact weights (see ``torchref.convert``)."""
        from torchref.convert import convnet_from_scratch
        return convnet_from_scratch(model, device=device, dtype=dtype)

    def to_scratch(self) -> scratch.convnet.SimpleConvNet:
        """The scratch model with this model's exact weights."""
        from torchref.convert import convnet_to_scratch
        return convnet_to_scratch(self)
