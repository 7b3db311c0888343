"""Mirror of ``scratch.models`` as ``nn.Module``s, same names and methods.

``MLP.from_scratch(model)`` / ``.to_scratch()`` move weights across sides
(through ``torchref.convert``); ``gradient`` is autograd, returned in the
course's layout so it compares key by key with ``scratch.models.MLP.gradient``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from torchref.functions import identity_function, sigmoid
from torchref.gradient import numerical_gradient as _numerical_gradient
from torchref.init import init_weight_
from torchref.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss

if TYPE_CHECKING:
    import scratch.models

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


def init_network(device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The course's example weights for the 2-3-2-2 network, as float64 tensors."""
    def t(v: list) -> torch.Tensor:
        return torch.tensor(v, dtype=torch.float64, device=device)
    return {
        "W1": t([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), "b1": t([0.1, 0.2, 0.3]),
        "W2": t([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]), "b2": t([0.1, 0.2]),
        "W3": t([[0.1, 0.3], [0.2, 0.4]]), "b3": t([0.1, 0.2]),
    }


def forward(network: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    z1 = sigmoid(x @ network["W1"] + network["b1"])
    z2 = sigmoid(z1 @ network["W2"] + network["b2"])
    return identity_function(z2 @ network["W3"] + network["b3"])


class MLP(nn.Module):
    """``Affine - act - ... - Affine`` with softmax cross-entropy; see ``scratch.models.MLP``."""

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 seed: int | None = None, weight_init_std: float | str = "auto",
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes: expected at least two positive widths (input and "
                             f"output), got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.sizes, self.activation = sizes, activation
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        n = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            W = torch.empty(fan_in, fan_out, dtype=dtype)
            init_weight_(W.T, activation, weight_init_std, gen)   # fan_in of (out, in)
            layers[f"Affine{i}"] = Affine(W, torch.zeros(fan_out, dtype=dtype))
            if i < n:
                layers[f"{activation.capitalize()}{i}"] = ACTIVATIONS[activation]()
        self.layers = nn.Sequential(layers)
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    @property
    def affines(self) -> list[Affine]:
        return [m for m in self.layers if isinstance(m, Affine)]

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """``W1, b1, ...`` in the course's layout (views of the module's parameters)."""
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.affines, start=1):
            out[f"W{i}"], out[f"b{i}"] = layer.W, layer.b
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, C)."""
        return self(x)

    def loss(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.predict(x), t)

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss(x, t)`` by autograd, keyed and laid out like ``params``."""
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            self.loss(x, t).backward()
        grads: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.affines, start=1):
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
    def accuracy(self, x: torch.Tensor, t: torch.Tensor) -> float:
        y = self.predict(x)
        labels = t.argmax(dim=-1) if t.shape == y.shape else t
        return float((y.argmax(dim=-1) == labels).double().mean())

    @classmethod
    def from_scratch(cls, model: scratch.models.MLP, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> MLP:
        """The torch model with ``model``'s exact weights (see ``torchref.convert``)."""
        from torchref.convert import mlp_from_scratch
        return mlp_from_scratch(model, device=device, dtype=dtype)

    def to_scratch(self) -> scratch.models.MLP:
        """The scratch model with this model's exact weights."""
        from torchref.convert import mlp_to_scratch
        return mlp_to_scratch(self)


# The convolutional network lives in torchref.convnet; re-exported here.
from torchref.convnet import SimpleConvNet  # noqa: E402, F401 (re-export)
