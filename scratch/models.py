"""Networks built from ``scratch.layers``.

* ``init_network`` / ``forward``: the course's fixed-weight 3-layer network
  (2 -> 3 -> 2 -> 2, sigmoid hidden units, identity output).
* ``MLP``: a multi-layer perceptron trained by backprop, with the course's
  model interface (``params``, ``predict``, ``loss``, ``gradient``,
  ``numerical_gradient``, ``accuracy``) and its optional weight decay,
  dropout and batch normalization.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from scratch._arrays import as_onehot
from scratch._checks import mlp_args
from scratch.batchnorm import BatchNormalization
from scratch.convnet import SimpleConvNet as SimpleConvNet  # re-export (its own module)
from scratch.dropout import Dropout
from scratch.functions import identity_function, sigmoid
from scratch.init import init_std as init_std  # re-exported: scratch.models.init_std
from scratch.init import init_weight
from scratch.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from scratch.network import Network

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


class MLP(Network):
    """Fully connected network ``Affine - [BatchNorm] - act - [Dropout] - ... - Affine``.

    The course's ``MultiLayerNetExtend``: softmax cross-entropy on top, and
    optionally the regularisers of its chapter 6.

    Parameters
    ----------
    sizes : layer widths, input first and classes last, e.g. ``[784, 100, 10]``.
    activation : ``"relu"`` or ``"sigmoid"`` for the hidden layers.
    seed : seed of the weight initialisation (``np.random.default_rng``); the
        dropout masks are drawn from the same generator afterwards.
    weight_init_std : ``"auto"`` (He for relu, Xavier for sigmoid), ``"he"``,
        ``"xavier"`` or a number.  Biases start at zero.
    dtype : float dtype of the parameters (float64 by default).
    weight_decay_lambda : L2 weight decay ``lambda >= 0``: the loss gains
        ``(lambda / 2) * sum_i ||W_i||^2`` (weights only, not biases, gammas
        or betas), so every ``dW_i`` gains ``lambda * W_i``.  torch's
        ``weight_decay`` option of ``torch.optim`` adds the same term to the
        gradient instead of the loss (``torchref.models.MLP.param_groups``).
    use_dropout, dropout_ratio : a ``Dropout(dropout_ratio)`` after every
        hidden activation (the course's convention: scale at test time).
    use_batchnorm : a ``BatchNormalization`` between every hidden Affine and
        its activation, with parameters ``gamma_i`` (ones) and ``beta_i``
        (zeros) in ``params``; its running statistics stay on the layer.

    ``params`` holds ``W1, b1, ..., WL, bL`` (and ``gamma_i, beta_i``) with
    ``Wi`` stored (in, out); the layers hold the same arrays, so an optimizer
    updating ``params`` in place updates the network.  ``predict``/``loss``
    take ``train_flg`` (False: test-time dropout scaling and running
    statistics); ``gradient`` runs the network in training mode.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu",
                 seed: int | None = None, weight_init_std: float | str = "auto",
                 dtype: np.dtype | type = np.float64, weight_decay_lambda: float = 0.0,
                 use_dropout: bool = False, dropout_ratio: float = 0.5,
                 use_batchnorm: bool = False) -> None:
        sizes = mlp_args(sizes, activation, ACTIVATIONS, weight_decay_lambda, dropout_ratio)
        self.sizes, self.activation = sizes, activation
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.dropout_ratio = use_dropout, dropout_ratio
        self.use_batchnorm = use_batchnorm
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            self.params[f"W{i}"] = init_weight(rng, (fan_in, fan_out), fan_in, activation,
                                               weight_init_std, dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
            if use_batchnorm and i < len(sizes) - 1:
                self.params[f"gamma{i}"] = np.ones(fan_out, dtype=dtype)
                self.params[f"beta{i}"] = np.zeros(fan_out, dtype=dtype)
        self.rng = rng
        self.build_layers()

    @property
    def n_layers(self) -> int:
        """Number of Affine layers."""
        return len(self.sizes) - 1

    def build_layers(self) -> None:
        """(Re)create the layer objects around the arrays in ``params``."""
        self.layers: list = []
        for i in range(1, self.n_layers + 1):
            self.layers.append(Affine(self.params[f"W{i}"], self.params[f"b{i}"],
                                      input_grad=i > 1))   # no dx for the input images
            if i < self.n_layers:
                if self.use_batchnorm:
                    self.layers.append(BatchNormalization(self.params[f"gamma{i}"],
                                                          self.params[f"beta{i}"]))
                self.layers.append(ACTIVATIONS[self.activation]())
                if self.use_dropout:
                    self.layers.append(Dropout(self.dropout_ratio, seed=self.rng))
        self.last_layer = SoftmaxWithLoss()

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t, train_flg=True)`` by backprop, keyed like ``params``."""
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = {}
        for i, layer in enumerate(self.layers_of(Affine), start=1):
            grads[f"W{i}"] = layer.dW + self.weight_decay_lambda * layer.W
            grads[f"b{i}"] = layer.db
        for i, layer in enumerate(self.layers_of(BatchNormalization), start=1):
            grads[f"gamma{i}"], grads[f"beta{i}"] = layer.dgamma, layer.dbeta
        return grads

    def accuracy(self, x: np.ndarray, t: np.ndarray) -> float:
        """Fraction of samples whose largest logit (test mode) is the target class."""
        y = self.predict(x, train_flg=False)
        labels = as_onehot(y, t).argmax(axis=-1)
        return float(np.mean(y.argmax(axis=-1) == labels))


# The convolutional networks live in scratch.convnet and scratch.convnets; re-exported here.
from scratch.convnets import CNN, DeepConvNet  # noqa: E402, F401 (re-export)

# The recurrent sequence classifier lives in scratch.models_seq; re-exported here.
from scratch.models_seq import LSTMClassifier  # noqa: E402, F401 (re-export)
