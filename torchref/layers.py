"""Mirror of ``scratch.layers`` as ``nn.Module``s; backward is autograd.

``Affine(W, b)`` takes W in the course's (in, out) layout, like the scratch
layer, and stores it the way ``nn.Linear`` does, (out, in).  This class is the
only place that transposes: ``W``/``dW`` read back in the course's layout.
"""

from __future__ import annotations

import torch
from torch import nn

from scratch._checks import check_batch, check_ndim
from torchref.batchnorm import BatchNormalization as BatchNormalization  # re-export
from torchref.distillation import DistillationLoss as DistillationLoss  # re-export
from torchref.dropout import Dropout as Dropout  # re-export
from torchref.functions import as_float_tensor, check_input_dtype
from torchref.losses import check_distribution_rows, check_target_tensor, softmax_cross_entropy


class Affine(nn.Linear):
    """``out = x W + b`` as an ``nn.Linear`` (weight = W^T); x (N, ...) is flattened to (N, D)."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor) -> None:
        W, b = torch.as_tensor(W), torch.as_tensor(b)
        check_ndim("W", tuple(W.shape), (2,))
        if tuple(b.shape) != (W.shape[1],):
            raise ValueError(f"b: expected shape ({W.shape[1]},) to match W "
                             f"{tuple(W.shape)}, got {tuple(b.shape)}")
        super().__init__(W.shape[0], W.shape[1], device=W.device, dtype=W.dtype)
        self.load_course(W, b)

    def load_course(self, W: torch.Tensor, b: torch.Tensor) -> None:
        """Copy W (in, out) and b (out,) into the layer's (out, in) weight and bias."""
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(W).T)
            self.bias.copy_(torch.as_tensor(b))

    @property
    def W(self) -> torch.Tensor:
        """The weight in the course's (in, out) layout (a view of ``weight``)."""
        return self.weight.T

    @property
    def b(self) -> torch.Tensor:
        return self.bias

    @property
    def dW(self) -> torch.Tensor | None:
        """dL/dW in the (in, out) layout after ``backward``."""
        return None if self.weight.grad is None else self.weight.grad.T

    @property
    def db(self) -> torch.Tensor | None:
        return self.bias.grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batch("x", tuple(x.shape))
        if x.dim() < 2 or x[0].numel() != self.in_features:
            raise ValueError(f"x: expected shape (N, {self.in_features}) (or (N, ...) with "
                             f"{self.in_features} features per sample), got {tuple(x.shape)}")
        check_input_dtype(x, self.weight)
        return super().forward(x.flatten(1))


class Relu(nn.ReLU):
    """``max(0, x)``."""


class Sigmoid(nn.Sigmoid):
    """``1 / (1 + exp(-x))``."""


class SoftmaxWithLoss(nn.Module):
    """``forward(x, t)``: mean softmax cross-entropy (``F.cross_entropy``).

    Rows of t must be probability distributions, as for the scratch layer (whose
    hand-derived backward assumes it): anything else is a ``ValueError`` naming ``t``.
    """

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = as_float_tensor(x)
        t = torch.as_tensor(t, device=x.device)
        if not check_target_tensor(x, t, "x", "t"):
            check_distribution_rows(t.to(x.dtype), "t")
        return softmax_cross_entropy(x, t)

# Convolutional layers live in torchref.conv; re-exported here.
from torchref.conv import Convolution, Pooling  # noqa: E402, F401 (re-export)
