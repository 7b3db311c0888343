"""What the course's networks share: layers in order, train/test mode, the L2 term.

``scratch.models.MLP`` and ``scratch.convnet.SimpleConvNet`` are both a
sequence of layers topped by ``SoftmaxWithLoss``.  This base class holds the
methods that read the same for both; each network keeps its own constructor,
``build_layers`` and ``gradient`` (the backprop lesson).

* ``predict(x, train_flg)``: the layers in order; ``Dropout`` and
  ``BatchNormalization`` are told the mode (training: a fresh mask, batch
  statistics; test: the test-time scaling, the running statistics).
* ``loss``: mean softmax cross-entropy plus the L2 term
  ``(lambda / 2) * sum_i ||W_i||^2`` over the weights ``W1, W2, ...`` of
  ``params`` (not biases, gammas or betas); its gradient ``lambda * W_i`` is
  added in each network's ``gradient``.
* ``numerical_gradient``: central differences of the training-mode loss,
  running statistics restored.

A subclass sets ``params`` (arrays shared with its layers), ``layers`` (a list,
or a dict by name, in order), ``last_layer`` and ``weight_decay_lambda``.
"""

from __future__ import annotations

import numpy as np

from scratch._arrays import as_onehot
from scratch.batchnorm import BatchNormalization, running_stats_kept
from scratch.dropout import Dropout
from scratch.gradient import params_numerical_gradient


class Network:
    """Base of ``MLP`` and ``SimpleConvNet`` (see the module docstring)."""

    params: dict[str, np.ndarray]
    layers: list | dict
    weight_decay_lambda: float

    def ordered_layers(self) -> list:
        """The layers in forward order (``layers`` may be a list or a dict by name)."""
        layers = self.layers
        return list(layers.values()) if isinstance(layers, dict) else list(layers)

    def layers_of(self, kind: type) -> list:
        """The layers of one class, in order (e.g. ``model.layers_of(Dropout)``)."""
        return [layer for layer in self.ordered_layers() if isinstance(layer, kind)]

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Logits (N, classes) for a batch x."""
        for layer in self.ordered_layers():
            if isinstance(layer, (Dropout, BatchNormalization)):
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def weight_decay(self) -> float:
        """``(lambda / 2) * sum_i ||W_i||^2``, the L2 term of the loss."""
        if self.weight_decay_lambda == 0:
            return 0.0
        return 0.5 * self.weight_decay_lambda * sum(
            float(np.sum(value ** 2)) for key, value in self.params.items()
            if key.startswith("W"))

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Mean softmax cross-entropy of the logits against t, plus the weight decay term."""
        loss = self.last_layer.forward(self.predict(x, train_flg), t)
        return loss + loss.dtype.type(self.weight_decay())

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray,
                           h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t, train_flg=True)`` by central differences (slow).

        Use float64 parameters: in float32 the perturbation h is rounded away.
        Exact only where the loss is smooth (no relu input, no max-pool tie
        within h).  With dropout, fix the masks first (``layer.fixed_mask`` of
        every ``model.layers_of(Dropout)``), or every loss draws new ones.  The
        batch-norm running statistics are restored afterwards.
        """
        with running_stats_kept(self.layers_of(BatchNormalization)):
            return params_numerical_gradient(lambda: self.loss(x, t, train_flg=True),
                                             self.params, h)

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
        """Fraction of samples whose largest logit (test mode) is the target class (in batches of
        ``batch_size``: bounded memory for conv nets); t labels or one-hot rows."""
        t = np.asarray(t)
        correct = 0
        for i in range(0, len(x), batch_size):
            y = self.predict(x[i:i + batch_size], train_flg=False)
            labels = as_onehot(y, t[i:i + batch_size]).argmax(axis=-1)   # validates t
            correct += int(np.sum(y.argmax(axis=-1) == labels))
        return correct / len(x)
