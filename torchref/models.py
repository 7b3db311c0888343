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

from scratch._checks import mlp_args
from torchref import convert
from torchref.batchnorm import BatchNormalization
from torchref.convnet import SimpleConvNet as SimpleConvNet  # re-export (its own module)
from torchref.dropout import Dropout
from torchref.functions import identity_function, sigmoid
from torchref.init import init_weight_
from torchref.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from torchref.network import Network

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


class MLP(Network):
    """``Affine - [BatchNorm] - act - [Dropout] - ... - Affine``; see ``scratch.models.MLP``.

    Same options as the scratch model.  ``predict``/``loss`` take ``train_flg``
    (they switch the module's mode for the call and restore it); calling the
    module, ``model(x)``, follows ``model.train()``/``model.eval()`` as usual.
    Weight decay is in the loss, as in the course; the torch way is
    ``weight_decay_lambda=0`` and ``torch.optim``'s ``weight_decay`` on the
    weights only: ``optimizer(model.param_groups(lam))``.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 seed: int | None = None, weight_init_std: float | str = "auto",
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, weight_decay_lambda: float = 0.0,
                 use_dropout: bool = False, dropout_ratio: float = 0.5,
                 use_batchnorm: bool = False) -> None:
        super().__init__()
        sizes = mlp_args(sizes, activation, ACTIVATIONS, weight_decay_lambda, dropout_ratio)
        self.sizes, self.activation = sizes, activation
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.dropout_ratio = use_dropout, dropout_ratio
        self.use_batchnorm = use_batchnorm
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        n = len(sizes) - 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            W = torch.empty(fan_in, fan_out, dtype=dtype)
            init_weight_(W.T, activation, weight_init_std, gen)   # fan_in of (out, in)
            layers[f"Affine{i}"] = Affine(W, torch.zeros(fan_out, dtype=dtype))
            if i < n:
                if use_batchnorm:
                    layers[f"BatchNorm{i}"] = BatchNormalization(
                        torch.ones(fan_out, dtype=dtype), torch.zeros(fan_out, dtype=dtype))
                layers[f"{activation.capitalize()}{i}"] = ACTIVATIONS[activation]()
                if use_dropout:
                    layers[f"Dropout{i}"] = Dropout(dropout_ratio)
        self.layers = nn.Sequential(layers)
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    @property
    def affines(self) -> list[Affine]:
        return self.layers_of(Affine)

    def course_layers(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        """``W1, b1, ...`` of the Affine layers, then ``gamma_i, beta_i`` of the batch norms."""
        return ([(str(i), layer, ("W", "b")) for i, layer in enumerate(self.affines, start=1)]
                + [(str(i), layer, ("gamma", "beta")) for i, layer
                   in enumerate(self.layers_of(BatchNormalization), start=1)])

    @classmethod
    def from_scratch(cls, model: scratch.models.MLP, device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> MLP:
        """The torch model with ``model``'s exact weights (see ``torchref.convert``)."""
        tmodel = cls(model.sizes, dtype=dtype or convert.scratch_dtype(model), device=device,
                     **convert.mlp_options(model))
        return convert.load_mlp(tmodel, model)

    def to_scratch(self) -> scratch.models.MLP:
        """The scratch model with this model's exact weights."""
        return convert.mlp_to_scratch(self)


# The convolutional networks live in torchref.convnet and torchref.convnets; re-exported here.
from torchref.convnets import CNN, DeepConvNet  # noqa: E402, F401 (re-export)

# The Transformer classifier lives in torchref.models_attention; re-exported for model_from_scratch.
from torchref.models_attention import TransformerClassifier  # noqa: E402, F401 (re-export)

# The recurrent sequence classifier lives in torchref.models_seq; re-exported here.
from torchref.models_seq import LSTMClassifier  # noqa: E402, F401 (re-export)
