"""The course's SimpleConvNet: conv - relu - pool - affine - relu - affine - softmax.

Shapes for the default MNIST-sized input (1, 28, 28), 30 5x5 filters:

    x (N, 1, 28, 28) -Conv1-> (N, 30, 24, 24) -Relu1-> -Pool1 2x2-> (N, 30, 12, 12)
      -Affine1-> (N, 100) -Relu2-> -Affine2-> (N, 10) logits -SoftmaxWithLoss-> loss

For the 8x8 digits use e.g. ``input_dim=(1, 8, 8)`` with a 3x3 filter and
``pad=1`` (8x8 maps, pooled to 4x4).  ``gradient`` is backprop through the
layers in reverse; the model has the same interface as ``scratch.models.MLP``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratch._checks import DEFAULT_CONV, conv_net_shapes
from scratch.conv import Convolution, Pooling
from scratch.gradient import numerical_gradient
from scratch.init import init_weight
from scratch.layers import Affine, Relu, SoftmaxWithLoss
from scratch.losses import as_onehot


class SimpleConvNet:
    """conv - relu - pool(2x2) - affine - relu - affine, with softmax cross-entropy.

    Parameters
    ----------
    input_dim : (C, H, W) of one image.
    conv_param : ``filter_num``, ``filter_size`` (square), ``pad``, ``stride``.
    hidden_size, output_size : widths of the two Affine layers.
    weight_init_std : a number (the course's 0.01), or ``"he"``, ``"xavier"``,
        ``"auto"`` (He: every weight layer here feeds a relu or the softmax).
    seed : seed of the weight initialisation (``np.random.default_rng``).
    dtype : float dtype of the parameters (float64 by default).

    ``params``: W1 (FN, C, FS, FS), b1 (FN,), W2 (FN*PH*PW, hidden), b2, W3
    (hidden, out), b3; the layers hold these very arrays.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: dict | None = None,
                 hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float | str = 0.01, seed: int | None = None,
                 dtype: np.dtype | type = np.float64) -> None:
        self.input_dim = tuple(int(v) for v in input_dim)
        self.conv_param = {**DEFAULT_CONV, **(conv_param or {})}
        self.hidden_size, self.output_size = int(hidden_size), int(output_size)
        shapes = conv_net_shapes(self.input_dim, self.conv_param, self.hidden_size,
                                 self.output_size)
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for key, shape in shapes.items():
            if key.startswith("W"):
                fan_in = int(np.prod(shape[1:])) if key == "W1" else shape[0]
                self.params[key] = init_weight(rng, shape, fan_in, "relu", weight_init_std,
                                               dtype)
            else:
                self.params[key] = np.zeros(shape, dtype=dtype)
        self.build_layers()

    def build_layers(self) -> None:
        """(Re)create the layer objects around the arrays in ``params``."""
        p, cp = self.params, self.conv_param
        self.layers = {
            # input_grad=False: nothing upstream of the first layer needs dL/dx.
            "Conv1": Convolution(p["W1"], p["b1"], cp["stride"], cp["pad"], input_grad=False),
            "Relu1": Relu(),
            "Pool1": Pooling(2, 2, stride=2),
            "Affine1": Affine(p["W2"], p["b2"]),
            "Relu2": Relu(),
            "Affine2": Affine(p["W3"], p["b3"]),
        }
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, output_size) for images (N, C, H, W)."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Mean softmax cross-entropy of the logits against t (labels or one-hot)."""
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by backprop, keyed like ``params``."""
        self.loss(x, t)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i, name in enumerate(("Conv1", "Affine1", "Affine2"), start=1):
            grads[f"W{i}"], grads[f"b{i}"] = self.layers[name].dW, self.layers[name].db
        return grads

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray,
                           h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by central differences (float64 parameters).

        Exact only where the loss is smooth: no pre-activation within h of a relu
        kink and no max-pool window whose top two values are within h of a tie.
        """
        grads = {}
        for key, value in self.params.items():
            saved = value.copy()

            def loss_at(w: np.ndarray, value: np.ndarray = value) -> float:
                value[...] = w   # the layers hold this very array
                return float(self.loss(x, t))
            try:
                grads[key] = numerical_gradient(loss_at, saved, h)
            finally:
                value[...] = saved
        return grads

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
        """Fraction of images whose largest logit is the target class (in batches)."""
        t = np.asarray(t)
        correct = 0
        for i in range(0, len(x), batch_size):
            y = self.predict(x[i:i + batch_size])
            labels = as_onehot(y, t[i:i + batch_size]).argmax(axis=-1)   # validates t
            correct += int(np.sum(y.argmax(axis=-1) == labels))
        return correct / len(x)
