"""Mirror of ``scratch.network``: what ``MLP`` and ``SimpleConvNet`` share, as an ``nn.Module``.

A subclass sets ``layers`` (an ``nn.Sequential``), ``last_layer``,
``weight_decay_lambda`` and ``course_layers`` (which layer holds W_i, b_i, ...:
``params`` and ``gradient`` follow from it).  The weights ``W_i`` are
the ``weight`` of every ``Affine`` and ``Convolution`` layer; the L2 term is in
the loss, as in the course, and ``param_groups`` gives the torch way instead
(``torch.optim``'s ``weight_decay`` on the weights only, with
``weight_decay_lambda=0``).  ``predict``/``loss`` take ``train_flg`` (the
module's mode is switched for the call and restored); calling the module,
``model(x)``, follows ``model.train()``/``model.eval()`` as usual.
"""

from __future__ import annotations

import torch
from torch import nn

from scratch._checks import check_non_negative
from torchref.batchnorm import BatchNormalization, running_stats_kept
from torchref.conv import Convolution
from torchref.gradient import params_numerical_gradient
from torchref.layers import Affine


class Network(nn.Module):
    """Base of ``torchref.models.MLP``, ``torchref.convnet.SimpleConvNet`` and the
    ``torchref.convnets`` networks (``CNN``, ``DeepConvNet``)."""

    layers: nn.Sequential
    weight_decay_lambda: float

    def layers_of(self, kind: type) -> list[nn.Module]:
        """The layers of one class, in order."""
        return [m for m in self.layers if isinstance(m, kind)]

    def weights(self) -> list[nn.Parameter]:
        """The weights W1, W2, ... (torch layout): what the L2 term and weight decay act on."""
        return [m.weight for m in self.layers if isinstance(m, (Affine, Convolution))]

    def param_groups(self, weight_decay: float) -> list[dict]:
        """torch.optim param groups: ``weight_decay`` on the weights W only, 0 on the rest.

        torch.optim's ``weight_decay`` adds ``weight_decay * p`` to the gradient
        of every parameter of its group: the gradient of the course's L2 term.
        """
        check_non_negative("weight_decay", weight_decay)
        weights = self.weights()
        ids = {id(w) for w in weights}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": weights, "weight_decay": weight_decay},
                {"params": rest, "weight_decay": 0.0}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def predict(self, x: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        """Logits (N, classes), in training mode when ``train_flg`` (test mode otherwise)."""
        was_training = self.training
        self.train(train_flg)
        try:
            return self(x)
        finally:
            self.train(was_training)

    def weight_decay(self) -> torch.Tensor:
        """``(lambda / 2) * sum_i ||W_i||^2``."""
        return 0.5 * self.weight_decay_lambda * sum((w ** 2).sum() for w in self.weights())

    def loss(self, x: torch.Tensor, t: torch.Tensor, train_flg: bool = False) -> torch.Tensor:
        loss = self.last_layer(self.predict(x, train_flg), t)
        if self.weight_decay_lambda == 0:
            return loss
        return loss + self.weight_decay()

    @torch.no_grad()
    def numerical_gradient(self, x: torch.Tensor, t: torch.Tensor,
                           h: float = 1e-4) -> dict[str, torch.Tensor]:
        """Central differences of ``loss(x, t, train_flg=True)``; running statistics restored."""
        with running_stats_kept(self.layers_of(BatchNormalization)):
            return params_numerical_gradient(lambda: self.loss(x, t, train_flg=True),
                                             self.params, h)

    def course_layers(self) -> list[tuple[str, nn.Module, tuple[str, ...]]]:
        """(index, layer, attributes) for every layer holding parameters, in ``params``
        order: ``("1", affine, ("W", "b"))`` gives W1, b1 (and the gradients dW, db)."""
        raise NotImplementedError

    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The parameters in the course's layout (views), keyed as in scratch."""
        return {f"{a}{i}": getattr(layer, a) for i, layer, attrs in self.course_layers()
                for a in attrs}

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss(x, t, train_flg=True)`` by autograd, keyed and laid out like
        ``params`` (each layer's ``dW``, ``db``, ... copied)."""
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            self.loss(x, t, train_flg=True).backward()
        return {f"{a}{i}": getattr(layer, "d" + a).clone()
                for i, layer, attrs in self.course_layers() for a in attrs}

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, t: torch.Tensor, batch_size: int = 1000) -> float:
        """Fraction of samples whose largest logit (test mode) is the label, in batches of
        ``batch_size`` (bounded memory for conv nets); t labels or one-hot rows."""
        correct = 0
        for i in range(0, len(x), batch_size):
            y, tb = self.predict(x[i:i + batch_size]), t[i:i + batch_size]
            labels = tb.argmax(dim=-1) if tb.shape == y.shape else tb
            correct += int((y.argmax(dim=-1) == labels).sum())
        return correct / len(x)
