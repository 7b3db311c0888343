"""The course's SimpleConvNet: conv - relu - pool - affine - relu - affine - softmax.

Shapes for the default MNIST-sized input (1, 28, 28), 30 5x5 filters:

    x (N, 1, 28, 28) -Conv1-> (N, 30, 24, 24) -Relu1-> -Pool1 2x2-> (N, 30, 12, 12)
      -Affine1-> (N, 100) [-BatchNorm1-] -Relu2-> [-Dropout1-] -Affine2-> (N, 10) logits
      -SoftmaxWithLoss-> loss

For the 8x8 digits use e.g. ``input_dim=(1, 8, 8)`` with a 3x3 filter and
``pad=1`` (8x8 maps, pooled to 4x4).  ``gradient`` is backprop through the
layers in reverse; the model has the same interface as ``scratch.models.MLP``.

The regularisers of the course's chapter 6, placed as the MLP places them:

* batch norm (``use_batchnorm``) between the hidden Affine and its relu, the
  course's ``BatchNormalization``: one mean and variance per hidden unit over
  the batch.  There is none after the convolution: the course's layer would
  normalise each of the FN*OH*OW conv activations on its own, which is not what
  torch's ``BatchNorm2d`` does (one mean and variance per channel, over N, H
  and W), and the course's SimpleConvNet has none there either.
* dropout (``use_dropout``) after the hidden relu, before the last Affine.
* L2 weight decay (``weight_decay_lambda``) on the three weights W1 (the
  filters), W2 and W3, not on biases, gamma or beta.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratch._checks import conv_net_args
from scratch.batchnorm import BatchNormalization
from scratch.conv import Convolution, Pooling
from scratch.dropout import Dropout
from scratch.init import init_weight
from scratch.layers import Affine, Relu, SoftmaxWithLoss
from scratch.network import Network

# The layer that holds W_i and b_i, for i = 1, 2, 3.
WEIGHT_LAYERS = {"1": "Conv1", "2": "Affine1", "3": "Affine2"}


class SimpleConvNet(Network):
    """conv - relu - pool(2x2) - affine - [batchnorm] - relu - [dropout] - affine, softmax loss.

    Parameters
    ----------
    input_dim : (C, H, W) of one image.
    conv_param : ``filter_num``, ``filter_size`` (square), ``pad``, ``stride``.
    hidden_size, output_size : widths of the two Affine layers.
    weight_init_std : a number (the course's 0.01), or ``"he"``, ``"xavier"``,
        ``"auto"`` (He: every weight layer here feeds a relu or the softmax).
    seed : seed of the weight initialisation (``np.random.default_rng``); the
        dropout masks are drawn from the same generator afterwards.
    dtype : float dtype of the parameters (float64 by default).
    weight_decay_lambda : L2 weight decay ``lambda >= 0``: the loss gains
        ``(lambda / 2) * (||W1||^2 + ||W2||^2 + ||W3||^2)``, so every ``dW_i``
        gains ``lambda * W_i`` (as ``scratch.models.MLP``).
    use_dropout, dropout_ratio : a ``Dropout(dropout_ratio)`` after the hidden
        relu (the course's convention: scale at test time).
    use_batchnorm : a ``BatchNormalization`` between the hidden Affine and its
        relu, with parameters ``gamma2`` (ones) and ``beta2`` (zeros), numbered
        after the weight W2 they follow (the MLP's ``gamma_i`` follows ``W_i``
        too); its running statistics stay on the layer.

    ``params``: W1 (FN, C, FS, FS), b1 (FN,), W2 (FN*PH*PW, hidden), b2,
    [gamma2, beta2 (hidden,)], W3 (hidden, out), b3; the layers hold these very
    arrays.  ``predict``/``loss`` take ``train_flg`` (False: test-time dropout
    scaling and running statistics); ``gradient`` runs in training mode.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: dict | None = None,
                 hidden_size: int = 100, output_size: int = 10,
                 weight_init_std: float | str = 0.01, seed: int | None = None,
                 dtype: np.dtype | type = np.float64, weight_decay_lambda: float = 0.0,
                 use_dropout: bool = False, dropout_ratio: float = 0.5,
                 use_batchnorm: bool = False) -> None:
        spec = conv_net_args(input_dim, conv_param, hidden_size, output_size,
                             weight_decay_lambda, dropout_ratio)
        self.input_dim, self.conv_param, self.hidden_size, self.output_size = spec[:4]
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.dropout_ratio = use_dropout, dropout_ratio
        self.use_batchnorm = use_batchnorm
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for key, shape in spec.shapes.items():
            if key.startswith("W"):
                fan_in = int(np.prod(shape[1:])) if key == "W1" else shape[0]
                self.params[key] = init_weight(rng, shape, fan_in, "relu", weight_init_std,
                                               dtype)
            else:
                self.params[key] = np.zeros(shape, dtype=dtype)
            if key == "b2" and use_batchnorm:
                self.params["gamma2"] = np.ones(shape, dtype=dtype)
                self.params["beta2"] = np.zeros(shape, dtype=dtype)
        self.rng = rng
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
        }
        if self.use_batchnorm:
            self.layers["BatchNorm1"] = BatchNormalization(p["gamma2"], p["beta2"])
        self.layers["Relu2"] = Relu()
        if self.use_dropout:
            self.layers["Dropout1"] = Dropout(self.dropout_ratio, seed=self.rng)
        self.layers["Affine2"] = Affine(p["W3"], p["b3"])
        self.last_layer = SoftmaxWithLoss()

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t, train_flg=True)`` by backprop, keyed like ``params``."""
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for i, name in WEIGHT_LAYERS.items():
            layer = self.layers[name]
            grads[f"W{i}"] = layer.dW + self.weight_decay_lambda * layer.W
            grads[f"b{i}"] = layer.db
        if self.use_batchnorm:
            bn = self.layers["BatchNorm1"]
            grads["gamma2"], grads["beta2"] = bn.dgamma, bn.dbeta
        return grads
