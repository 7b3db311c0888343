"""Mirror of ``scratch.convnets`` (``CNN``, ``DeepConvNet``) as plain ``nn.Module``s.

Built from the same layer spec as the scratch side (``scratch.convnets.cnn_spec``
/ ``deep_spec``), each layer a named attribute of the module (``conv1``,
``relu1``, ..., ``fc1``, ``fc2``), so the state_dict keys are the reference
text's: ``conv1.weight`` (32, 1, 3, 3), ``fc1.weight`` (128, 9216), ...; the
text's trained ``state_dict`` loads into ``CNN()`` as it is (its dropouts hold
no state).  ``params`` returns W1.., b1.. in the course's layout (views: the
conv weights as they are, the fc weights transposed back to (in, out));
``gradient`` is autograd in that layout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from scratch._checks import check_regularisation
from scratch.convnets import (
    LayerSpec,
    check_in_shape,
    check_sizes,
    cnn_spec,
    deep_spec,
    spec_shapes,
)
from torchref import convert
from torchref.conv import Convolution, Pooling
from torchref.dropout import Dropout
from torchref.init import init_weight_
from torchref.layers import Affine, Relu, SoftmaxWithLoss
from torchref.network import Network

if TYPE_CHECKING:
    import scratch.convnets


class SpecNet(Network):
    """A network built from a layer spec; base of ``CNN`` and ``DeepConvNet``."""

    spec: list[LayerSpec]
    in_shape: tuple[int, int, int]

    def build(self, weight_init_std: float | str, seed: int | None, dtype: torch.dtype,
              device: torch.device | str | None) -> None:
        """Create the layers as named attributes, weights initialised as scratch does
        (He normal by default, zero biases) from a ``torch.Generator`` seeded by ``seed``."""
        shapes, self.output_shapes = spec_shapes(self.spec, self.in_shape)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.last_layer = SoftmaxWithLoss()
        self.layer_names: list[str] = []
        for name, kind, opt in self.spec:
            if kind in ("conv", "fc"):
                W = torch.empty(shapes[opt["W"]], dtype=dtype)
                init_weight_(W if kind == "conv" else W.T, "relu", weight_init_std, gen)
                b = torch.zeros(shapes[opt["b"]], dtype=dtype)
                layer = Convolution(W, b, 1, opt["pad"]) if kind == "conv" else Affine(W, b)
            elif kind == "relu":
                layer = Relu()
            elif kind == "pool":
                layer = Pooling(2, 2, stride=2)
            else:
                layer = Dropout(opt["ratio"], opt["inverted"])
            self.add_module(name, layer)
            self.layer_names.append(name)
        self.to(device=device)

    @property
    def layers(self) -> list[nn.Module]:    # type: ignore[override]
        """The layers in forward order (attributes of the module, not a Sequential)."""
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def weight_layers(self) -> dict[str, nn.Module]:
        """Parameter index ("1", "2", ...) -> the conv or fc layer holding W_i, b_i."""
        return {opt["W"][1:]: getattr(self, name) for name, kind, opt in self.spec
                if kind in ("conv", "fc")}

    def course_layers(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        """W1.., b1.. of the conv and fc layers, in order."""
        return [(i, layer, ("W", "b")) for i, layer in self.weight_layers().items()]

    @classmethod
    def from_scratch(cls, model: scratch.convnets.SpecNet,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype | None = None) -> SpecNet:
        """The torch model with ``model``'s exact weights and options (see ``torchref.convert``)."""
        if dtype is None:
            dtype = torch.from_numpy(model.params["W1"][:0]).dtype
        tmodel = getattr(sys.modules[__name__], type(model).__name__)(
            **model.options(), dtype=dtype, device=device)
        return convert.load_specnet(tmodel, model)

    def to_scratch(self) -> scratch.convnets.SpecNet:
        """The scratch model with this model's exact weights and options."""
        return convert.specnet_to_scratch(self)


class CNN(SpecNet):
    """The reference text's CNN; see ``scratch.convnets.CNN`` (one pool, and why).

    Attributes ``conv1``, ``conv2``, ``fc1``, ``fc2`` (and ``dropout1``,
    ``dropout2`` with ``use_dropout``: ``torchref.dropout.Dropout`` inverted, as
    ``nn.Dropout``) are the text's, so ``CNN().load_state_dict(text_state_dict)``
    works.  ``predict``/``loss`` take ``train_flg``; calling the module follows
    ``train()``/``eval()``.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), hidden_size: int = 128,
                 output_size: int = 10, use_dropout: bool = False,
                 weight_init_std: float | str = "he", seed: int | None = None,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 weight_decay_lambda: float = 0.0) -> None:
        super().__init__()
        self.in_shape = check_in_shape(in_shape)
        self.hidden_size, self.output_size = check_sizes(hidden_size, output_size)
        check_regularisation(weight_decay_lambda, 0.5)
        self.use_dropout, self.weight_decay_lambda = bool(use_dropout), weight_decay_lambda
        self.spec = cnn_spec(self.hidden_size, self.output_size, self.use_dropout)
        self.build(weight_init_std, seed, dtype, device)

    def options(self) -> dict:
        return {"in_shape": self.in_shape, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "use_dropout": self.use_dropout,
                "weight_decay_lambda": self.weight_decay_lambda}


class DeepConvNet(SpecNet):
    """The course's DeepConvNet; see ``scratch.convnets.DeepConvNet``.

    Layers ``conv1``..``conv6``, ``pool1``..``pool3``, ``fc1``, ``fc2`` (and
    ``dropout``, the course's convention, on by default).
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), hidden_size: int = 50,
                 output_size: int = 10, use_dropout: bool = True, dropout_ratio: float = 0.5,
                 weight_init_std: float | str = "he", seed: int | None = None,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 weight_decay_lambda: float = 0.0) -> None:
        super().__init__()
        self.in_shape = check_in_shape(in_shape)
        self.hidden_size, self.output_size = check_sizes(hidden_size, output_size)
        check_regularisation(weight_decay_lambda, dropout_ratio)
        self.use_dropout, self.dropout_ratio = bool(use_dropout), dropout_ratio
        self.weight_decay_lambda = weight_decay_lambda
        self.spec = deep_spec(self.hidden_size, self.output_size, self.use_dropout,
                              dropout_ratio)
        self.build(weight_init_std, seed, dtype, device)

    def options(self) -> dict:
        return {"in_shape": self.in_shape, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "use_dropout": self.use_dropout,
                "dropout_ratio": self.dropout_ratio,
                "weight_decay_lambda": self.weight_decay_lambda}
