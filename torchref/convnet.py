"""Mirror of ``scratch.convnet.SimpleConvNet`` as an ``nn.Module``, same methods and options.

``params`` returns W1..W3, b1..b3 (and gamma2, beta2 with batch norm) in the
course's layout (views of the module's parameters: the conv weight as it is,
the Affine weights transposed back to (in, out)); ``gradient`` is autograd in
the same layout.  Batch norm sits between the hidden Affine and its relu, dropout
after that relu, as in scratch (whose docstring says why).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._checks import conv_net_args
from torchref import convert
from torchref.batchnorm import BatchNormalization
from torchref.conv import Convolution, Pooling
from torchref.dropout import Dropout
from torchref.init import init_weight_
from torchref.layers import Affine, Relu, SoftmaxWithLoss
from torchref.network import Network

if TYPE_CHECKING:
    import scratch.convnet

LAYER_OF = {"1": "Conv1", "2": "Affine1", "3": "Affine2"}


class SimpleConvNet(Network):
    """conv - relu - pool(2x2) - affine - [batchnorm] - relu - [dropout] - affine.

    See ``scratch.convnet.SimpleConvNet``.  ``predict``/``loss`` take
    ``train_flg`` (the module's mode is switched for the call and restored);
    calling the module follows ``train()``/``eval()``.  Weight decay is in the
    loss, as in the course; the torch way is ``weight_decay_lambda=0`` and
    ``optimizer(model.param_groups(lam))``.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: dict | None = None,
                 hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float | str = 0.01, seed: int | None = None,
                 dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None, weight_decay_lambda: float = 0.0,
                 use_dropout: bool = False, dropout_ratio: float = 0.5,
                 use_batchnorm: bool = False) -> None:
        super().__init__()
        spec = conv_net_args(input_dim, conv_param, hidden_size, output_size,
                             weight_decay_lambda, dropout_ratio)
        self.input_dim, self.conv_param, self.hidden_size, self.output_size = spec[:4]
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.dropout_ratio = use_dropout, dropout_ratio
        self.use_batchnorm = use_batchnorm
        s = spec.shapes
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        W1, W2, W3 = (torch.empty(s[k], dtype=dtype) for k in ("W1", "W2", "W3"))
        for W in (W1, W2.T, W3.T):            # torch layout: fan_in over dims 1...
            init_weight_(W, "relu", weight_init_std, gen)
        zeros = {k: torch.zeros(s[k], dtype=dtype) for k in ("b1", "b2", "b3")}
        cp = self.conv_param
        layers: OrderedDict[str, nn.Module] = OrderedDict([
            ("Conv1", Convolution(W1, zeros["b1"], cp["stride"], cp["pad"], input_grad=False)),
            ("Relu1", Relu()),
            ("Pool1", Pooling(2, 2, stride=2)),
            ("Affine1", Affine(W2, zeros["b2"])),
        ])
        if use_batchnorm:
            layers["BatchNorm1"] = BatchNormalization(torch.ones(s["b2"], dtype=dtype),
                                                      torch.zeros(s["b2"], dtype=dtype))
        layers["Relu2"] = Relu()
        if use_dropout:
            layers["Dropout1"] = Dropout(dropout_ratio)
        layers["Affine2"] = Affine(W3, zeros["b3"])
        self.layers = nn.Sequential(layers)
        self.last_layer = SoftmaxWithLoss()
        self.to(device=device)

    def course_layers(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        """W1..W3, b1..b3 (and gamma2, beta2 after the first Affine with batch norm)."""
        out: list[tuple[str, nn.Module, tuple[str, ...]]] = []
        for i, name in LAYER_OF.items():
            out.append((i, self.layers.get_submodule(name), ("W", "b")))
            if i == "2" and self.use_batchnorm:
                out.append((i, self.layers.BatchNorm1, ("gamma", "beta")))
        return out

    @classmethod
    def from_scratch(cls, model: scratch.convnet.SimpleConvNet,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> SimpleConvNet:
        """The torch model with ``model``'s exact weights and options (see ``torchref.convert``)."""
        tmodel = cls(model.input_dim, model.conv_param, model.hidden_size, model.output_size,
                     dtype=dtype or convert.scratch_dtype(model), device=device,
                     **convert.regularisation_options(model))
        return convert.load_convnet(tmodel, model)

    def to_scratch(self) -> scratch.convnet.SimpleConvNet:
        """The scratch model with this model's exact weights and options."""
        return convert.convnet_to_scratch(self)
