"""Deeper CNNs: the reference text's ``CNN`` and the course's ``DeepConvNet``.

Both are a chain of ``scratch.conv`` and ``scratch.layers`` layers topped by
``SoftmaxWithLoss``, described once as a *layer spec* (name, kind, options)
that this module and its torch mirror (``torchref.convnets``) both build from,
so the two sides cannot disagree on the architecture.  Backprop is the chain of
the layers' hand-derived ``backward`` calls in reverse order, exactly as in the
``MLP`` and ``SimpleConvNet``.

``CNN`` (the PyTorch reference text's MNIST network), for (1, 28, 28) images::

    x (N, 1, 28, 28) -conv1 32 3x3-> (N, 32, 26, 26) -relu-> -conv2 64 3x3-> (N, 64, 24, 24)
      -relu-> -max-pool 2-> (N, 64, 12, 12) [-dropout 0.25-] -flatten-> (N, 9216)
      -fc1-> (N, 128) -relu-> [-dropout 0.5-] -fc2-> (N, 10) logits

``DeepConvNet`` (the course's chapter 8 network), for (1, 28, 28) images::

    conv 16 - relu - conv 16 - relu - pool     28x28 -> 28x28 -> 14x14
    conv 32 - relu - conv 32 (pad 2) - relu - pool   14x14 -> 16x16 -> 8x8
    conv 64 - relu - conv 64 - relu - pool     8x8 -> 8x8 -> 4x4
    fc 1024 -> 50 - relu - [dropout 0.5] - fc 50 -> 10

All convolutions are 3x3, stride 1, padding 1 except the fourth (padding 2);
every pool is a 2x2 max-pool with stride 2.  On the 8x8 digits
(``in_shape=(1, 8, 8)``) the maps go 8 -> 8 -> pool 4 -> 4 -> 6 (pad 2) ->
pool 3 -> 3 -> 3 -> pool 1: fc1 sees 64x1x1 = 64 features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratch._checks import check_regularisation, conv_output_size
from scratch.conv import Convolution, Pooling
from scratch.dropout import Dropout
from scratch.init import init_weight
from scratch.layers import Affine, Relu, SoftmaxWithLoss
from scratch.network import Network

# A layer spec: (name, kind, options); kind is "conv", "relu", "pool", "dropout" or "fc".
# A "conv" or "fc" layer holds the parameters named in its options ("W", "b").
LayerSpec = tuple[str, str, dict]


def check_in_shape(in_shape: Sequence[int]) -> tuple[int, int, int]:
    """``in_shape`` as (C, H, W) of positive ints, or ``ValueError`` naming it."""
    shape = tuple(int(v) for v in in_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"in_shape: expected (C, H, W) of positive sizes, got {in_shape!r}")
    return shape  # type: ignore[return-value]


def spec_shapes(spec: list[LayerSpec], in_shape: Sequence[int]
                ) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Walk the spec over one image of ``in_shape``.

    Returns the parameter shapes in the course's layout (conv W (FN, C, 3, 3),
    fc W (in, out)) and every layer's output shape (one image), or raises
    ``ValueError`` naming ``in_shape`` where a window no longer fits.
    """
    shape = check_in_shape(in_shape)
    params: dict[str, tuple[int, ...]] = {}
    outputs: dict[str, tuple[int, ...]] = {}
    for name, kind, opt in spec:
        try:
            if kind == "conv":
                k, pad = opt["size"], opt["pad"]
                params[opt["W"]] = (opt["out"], shape[0], k, k)
                params[opt["b"]] = (opt["out"],)
                shape = (opt["out"], *conv_output_size(shape[1:], (k, k), (1, 1), (pad, pad)))
            elif kind == "pool":
                shape = (shape[0], *conv_output_size(shape[1:], (2, 2), (2, 2), (0, 0)))
            elif kind == "fc":
                params[opt["W"]] = (int(np.prod(shape)), opt["out"])
                params[opt["b"]] = (opt["out"],)
                shape = (opt["out"],)
        except ValueError as exc:
            raise ValueError(f"in_shape: {tuple(in_shape)} is too small for layer {name} "
                             f"({exc})") from exc
        outputs[name] = shape
    return params, outputs


def cnn_spec(hidden_size: int = 128, output_size: int = 10,
             use_dropout: bool = False) -> list[LayerSpec]:
    """The reference text's network: conv 32 - relu - conv 64 - relu - pool - fc - relu - fc.

    Dropout is the text's ``nn.Dropout`` (inverted: scaled by 1/(1-p) while
    training, the identity at test time), so the text's trained weights give the
    text's test-time outputs.
    """
    spec: list[LayerSpec] = [
        ("conv1", "conv", {"W": "W1", "b": "b1", "out": 32, "size": 3, "pad": 0}),
        ("relu1", "relu", {}),
        ("conv2", "conv", {"W": "W2", "b": "b2", "out": 64, "size": 3, "pad": 0}),
        ("relu2", "relu", {}),
        ("pool", "pool", {}),
    ]
    if use_dropout:
        spec.append(("dropout1", "dropout", {"ratio": 0.25, "inverted": True}))
    spec += [("fc1", "fc", {"W": "W3", "b": "b3", "out": hidden_size}), ("relu3", "relu", {})]
    if use_dropout:
        spec.append(("dropout2", "dropout", {"ratio": 0.5, "inverted": True}))
    spec.append(("fc2", "fc", {"W": "W4", "b": "b4", "out": output_size}))
    return spec


DEEP_FILTERS = (16, 16, 32, 32, 64, 64)
DEEP_PADS = (1, 1, 1, 2, 1, 1)


def deep_spec(hidden_size: int = 50, output_size: int = 10, use_dropout: bool = True,
              dropout_ratio: float = 0.5) -> list[LayerSpec]:
    """The course's DeepConvNet: six 3x3 convs (pool after every second), fc - relu - fc.

    Dropout is the course's (not inverted: scaled by 1-p at test time).  The
    course also puts a dropout after the last Affine (on the logits); we follow
    the issue's layout, one dropout after the hidden relu.
    """
    spec: list[LayerSpec] = []
    for i, (out, pad) in enumerate(zip(DEEP_FILTERS, DEEP_PADS, strict=True), start=1):
        spec += [(f"conv{i}", "conv", {"W": f"W{i}", "b": f"b{i}", "out": out, "size": 3,
                                       "pad": pad}),
                 (f"relu{i}", "relu", {})]
        if i % 2 == 0:
            spec.append((f"pool{i // 2}", "pool", {}))
    spec += [("fc1", "fc", {"W": "W7", "b": "b7", "out": hidden_size}), ("relu7", "relu", {})]
    if use_dropout:
        spec.append(("dropout", "dropout", {"ratio": dropout_ratio, "inverted": False}))
    spec.append(("fc2", "fc", {"W": "W8", "b": "b8", "out": output_size}))
    return spec


def check_sizes(hidden_size: int, output_size: int) -> tuple[int, int]:
    for name, value in (("hidden_size", hidden_size), ("output_size", output_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(hidden_size), int(output_size)


def _fan_in(shape: tuple[int, ...]) -> int:
    """Inputs per output unit: C*FH*FW for a conv W (FN, C, FH, FW), D for an fc W (D, M)."""
    return int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]


class SpecNet(Network):
    """A network built from a layer spec (``self.spec``); base of ``CNN`` and ``DeepConvNet``.

    ``params`` holds ``W1, b1, ...`` in the course's layout, shared with the
    layers (an optimizer updating ``params`` in place updates the network).
    """

    spec: list[LayerSpec]
    in_shape: tuple[int, int, int]

    def init_params(self, rng: np.random.Generator, weight_init_std: float | str,
                    dtype: np.dtype | type) -> None:
        """Normal weights (He by default: every weight layer feeds a relu or the softmax)
        and zero biases, drawn from ``rng`` in the order W1, W2, ..."""
        shapes, self.output_shapes = spec_shapes(self.spec, self.in_shape)
        self.params: dict[str, np.ndarray] = {}
        for key, shape in shapes.items():
            if key.startswith("W"):
                self.params[key] = init_weight(rng, shape, _fan_in(shape), "relu",
                                               weight_init_std, dtype)
            else:
                self.params[key] = np.zeros(shape, dtype=dtype)

    def build_layers(self) -> None:
        """(Re)create the layer objects around the arrays in ``params``."""
        p = self.params
        self.layers: dict = {}
        for name, kind, opt in self.spec:
            if kind == "conv":   # no dL/dx for the input images (first layer)
                self.layers[name] = Convolution(p[opt["W"]], p[opt["b"]], 1, opt["pad"],
                                                input_grad=bool(self.layers))
            elif kind == "fc":
                self.layers[name] = Affine(p[opt["W"]], p[opt["b"]])
            elif kind == "relu":
                self.layers[name] = Relu()
            elif kind == "pool":
                self.layers[name] = Pooling(2, 2, stride=2)
            else:
                self.layers[name] = Dropout(opt["ratio"], opt["inverted"], seed=self.rng)
        self.last_layer = SoftmaxWithLoss()

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t, train_flg=True)`` by backprop, keyed like ``params``:
        each layer's ``backward`` in reverse order; every ``dW`` gains ``lambda * W``."""
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for name, kind, opt in self.spec:
            if kind in ("conv", "fc"):
                layer = self.layers[name]
                grads[opt["W"]] = layer.dW + self.weight_decay_lambda * layer.W
                grads[opt["b"]] = layer.db
        return {k: grads[k] for k in self.params}


class CNN(SpecNet):
    """The PyTorch reference text's MNIST CNN, from scratch (see the module docstring).

    conv 32 3x3 - relu - conv 64 3x3 - relu - max-pool 2 - [dropout 0.25] -
    flatten - fc ``hidden_size`` - relu - [dropout 0.5] - fc ``output_size``.

    The text's ``forward`` applies ``max_pool2d`` after *each* convolution,
    which leaves 64x5x5 = 1600 features for 28x28 inputs and cannot feed its own
    ``fc1 = nn.Linear(9216, 128)``.  We follow the shapes of its layers: one
    pool, after the second convolution, giving 64x12x12 = 9216 features.  The
    text ends in ``log_softmax`` + ``nll_loss``; ours in ``SoftmaxWithLoss`` on
    the logits, the same loss.

    Parameters
    ----------
    in_shape : (C, H, W) of one image; fc1's input width is computed from it
        (9216 for (1, 28, 28), 256 for the 8x8 digits (1, 8, 8)).
    hidden_size, output_size : widths of fc1 and fc2 (the text's 128 and 10).
    use_dropout : the text's dropouts, 0.25 after the pool and 0.5 after fc1's
        relu, inverted as ``nn.Dropout`` (train ``x * mask / (1 - p)``, test ``x``).
    weight_init_std : ``"he"`` (default), ``"xavier"``, ``"auto"`` or a number;
        biases start at zero (the text keeps torch's default uniform init).
    seed, dtype, weight_decay_lambda : as ``scratch.models.MLP``.

    ``params``: W1 (32, C, 3, 3), b1, W2 (64, 32, 3, 3), b2, W3 (features,
    hidden), b3, W4 (hidden, out), b4; the layers are ``self.layers["conv1"]``
    etc., named as the text's module attributes.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), hidden_size: int = 128,
                 output_size: int = 10, use_dropout: bool = False,
                 weight_init_std: float | str = "he", seed: int | None = None,
                 dtype: np.dtype | type = np.float64, weight_decay_lambda: float = 0.0) -> None:
        self.in_shape = check_in_shape(in_shape)
        self.hidden_size, self.output_size = check_sizes(hidden_size, output_size)
        check_regularisation(weight_decay_lambda, 0.5)
        self.use_dropout, self.weight_decay_lambda = bool(use_dropout), weight_decay_lambda
        self.spec = cnn_spec(self.hidden_size, self.output_size, self.use_dropout)
        self.rng = np.random.default_rng(seed)
        self.init_params(self.rng, weight_init_std, dtype)
        self.build_layers()

    def options(self) -> dict:
        """The constructor options (weights, seed and dtype excluded): what conversion copies."""
        return {"in_shape": self.in_shape, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "use_dropout": self.use_dropout,
                "weight_decay_lambda": self.weight_decay_lambda}


class DeepConvNet(SpecNet):
    """The course's DeepConvNet, from scratch (see the module docstring for the shapes).

    Six 3x3 convolutions 16-16-32-32-64-64 with relu, a 2x2 max-pool after
    every second one, then fc ``hidden_size`` (50) - relu - [dropout] - fc
    ``output_size``; He initialisation (std sqrt(2 / fan_in), the course's
    ``weight_init_scales``), zero biases.  Padding 1 everywhere except 2 on the
    fourth convolution, so (1, 28, 28) inputs reach fc1 as 64x4x4 = 1024.

    Parameters
    ----------
    in_shape : (C, H, W) of one image; fc1's width is computed from it
        ((1, 8, 8) gives 64x1x1 = 64).
    use_dropout, dropout_ratio : the course's ``Dropout`` (not inverted) after
        the hidden relu; on by default as in the course.  Off, the network is a
        deterministic function of its weights (gradient checks, lockstep runs).
    weight_init_std, seed, dtype, weight_decay_lambda : as ``CNN``.

    ``params``: W1..W6 (FN, C, 3, 3), b1..b6, W7 (features, hidden), b7,
    W8 (hidden, out), b8.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), hidden_size: int = 50,
                 output_size: int = 10, use_dropout: bool = True, dropout_ratio: float = 0.5,
                 weight_init_std: float | str = "he", seed: int | None = None,
                 dtype: np.dtype | type = np.float64, weight_decay_lambda: float = 0.0) -> None:
        self.in_shape = check_in_shape(in_shape)
        self.hidden_size, self.output_size = check_sizes(hidden_size, output_size)
        check_regularisation(weight_decay_lambda, dropout_ratio)
        self.use_dropout, self.dropout_ratio = bool(use_dropout), dropout_ratio
        self.weight_decay_lambda = weight_decay_lambda
        self.spec = deep_spec(self.hidden_size, self.output_size, self.use_dropout,
                              dropout_ratio)
        self.rng = np.random.default_rng(seed)
        self.init_params(self.rng, weight_init_std, dtype)
        self.build_layers()

    def options(self) -> dict:
        """The constructor options (weights, seed and dtype excluded): what conversion copies."""
        return {"in_shape": self.in_shape, "hidden_size": self.hidden_size,
                "output_size": self.output_size, "use_dropout": self.use_dropout,
                "dropout_ratio": self.dropout_ratio,
                "weight_decay_lambda": self.weight_decay_lambda}
