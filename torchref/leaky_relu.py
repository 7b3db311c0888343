"""Mirror of ``scratch.leaky_relu`` on ``F.leaky_relu`` / ``nn.LeakyReLU``; backward is autograd."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import check_finite
from torchref.functions import _autograd_derivative, as_float_tensor


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    check_finite("negative_slope", negative_slope)
    return F.leaky_relu(as_float_tensor(x), negative_slope)


def leaky_relu_grad(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    check_finite("negative_slope", negative_slope)
    return _autograd_derivative(lambda z: F.leaky_relu(z, negative_slope), x)


class LeakyRelu(nn.LeakyReLU):
    """``nn.LeakyReLU`` with the scratch layer's argument check."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        check_finite("negative_slope", negative_slope)
        super().__init__(negative_slope)
