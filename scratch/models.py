"""Networks built from ``scratch.layers``.

* ``init_network`` / ``forward``: the course's fixed-weight 3-layer network
  (2 -> 3 -> 2 -> 2, sigmoid hidden units, identity output).
* ``MLP``: a multi-layer perceptron trained by backprop, with the course's
  model interface (``params``, ``predict``, ``loss``, ``gradient``,
  ``numerical_gradient``, ``accuracy``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from scratch.functions import identity_function, sigmoid
from scratch.gradient import numerical_gradient
from scratch.init import init_std as init_std  # re-exported: scratch.models.init_std
from scratch.init import init_weight
from scratch.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from scratch.losses import as_onehot

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


def init_network() -> dict[str, np.ndarray]:
    """The course's example weights for a 2-3-2-2 network."""
    return {
        "W1": np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]),
        "b1": np.array([0.1, 0.2, 0.3]),
        "W2": np.array([[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]]),
        "b2": np.array([0.1, 0.2]),
        "W3": np.array([[0.1, 0.3], [0.2, 0.4]]),
        "b3": np.array([0.1, 0.2]),
    }


def forward(network: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """``y = (sigmoid(sigmoid(x W1 + b1) W2 + b2)) W3 + b3``.

    >>> forward(init_network(), np.array([1.0, 0.5]))
    array([0.31682708, 0.69627909])
    """
    z1 = sigmoid(x @ network["W1"] + network["b1"])
    z2 = sigmoid(z1 @ network["W2"] + network["b2"])
    return identity_function(z2 @ network["W3"] + network["b3"])


class MLP:
    """Fully connected network ``Affine - act - ... - Affine`` with softmax cross-entropy.

    Parameters
    ----------
    sizes : layer widths, input first and classes last, e.g. ``[784, 100, 10]``.
    activation : ``"relu"`` or ``"sigmoid"`` for the hidden layers.
    seed : seed of the weight initialisation (``np.random.default_rng``).
    weight_init_std : ``"auto"`` (He for relu, Xavier for sigmoid), ``"he"``,
        ``"xavier"`` or a number.  Biases start at zero.
    dtype : float dtype of the parameters (float64 by default).

    ``params`` holds ``W1, b1, ..., WL, bL`` with ``Wi`` stored (in, out); the
    layers hold the same arrays, so an optimizer updating ``params`` in place
    updates the network.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 seed: int | None = None, weight_init_std: float | str = "auto",
                 dtype: np.dtype | type = np.float64) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes: expected at least two positive widths (input and "
                             f"output), got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.sizes, self.activation = sizes, activation
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            self.params[f"W{i}"] = init_weight(rng, (fan_in, fan_out), fan_in, activation,
                                               weight_init_std, dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
        self.build_layers()

    @property
    def n_layers(self) -> int:
        """Number of Affine layers."""
        return len(self.sizes) - 1

    def build_layers(self) -> None:
        """(Re)create the layer objects around the arrays in ``params``."""
        self.layers: list = []
        for i in range(1, self.n_layers + 1):
            self.layers.append(Affine(self.params[f"W{i}"], self.params[f"b{i}"]))
            if i < self.n_layers:
                self.layers.append(ACTIVATIONS[self.activation]())
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, C) for inputs (N, D)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Mean softmax cross-entropy of the logits against t (labels or one-hot)."""
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by backprop, keyed like ``params``."""
        self.loss(x, t)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        affines = self.layers[::2]
        grads = {}
        for i, layer in enumerate(affines, start=1):
            grads[f"W{i}"], grads[f"b{i}"] = layer.dW, layer.db
        return grads

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray,
                           h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by central differences (slow: 2 losses per weight).

        Use float64 parameters: in float32 the perturbation h is rounded away.
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

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of samples whose largest logit is the target class."""
        y = self.predict(x)
        labels = as_onehot(y, t).argmax(axis=-1)
        return float(np.mean(y.argmax(axis=-1) == labels))


# The convolutional network lives in scratch.convnet; re-exported here.
from scratch.convnet import SimpleConvNet  # noqa: E402, F401 (re-export)
