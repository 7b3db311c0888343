"""Mirror of ``scratch.conv`` on ``F.conv2d``, ``F.max_pool2d`` and ``F.avg_pool2d``.

Weights keep torch's layout, which is also the scratch layout: W (FN, C, FH,
FW), b (FN,).  Backward is autograd; ``dW``/``db`` read the parameters' grads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import (
    POOL_MODES,
    as_pair,
    check_batch,
    check_ndim,
    conv_output_size,
    pool_args,
)
from torchref.functions import check_input_dtype


class Convolution(nn.Module):
    """``F.conv2d(x, W, b, stride, pad)``; see ``scratch.conv.Convolution``.

    ``input_grad`` is accepted for the scratch signature; here autograd decides
    (dx is computed when x requires grad).
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, stride: int | Sequence[int] = 1,
                 pad: int | Sequence[int] = 0, input_grad: bool = True) -> None:
        super().__init__()
        W, b = torch.as_tensor(W), torch.as_tensor(b)
        check_ndim("W", tuple(W.shape), (4,))
        if tuple(b.shape) != (W.shape[0],):
            raise ValueError(f"b: expected shape ({W.shape[0]},) to match W "
                             f"{tuple(W.shape)}, got {tuple(b.shape)}")
        self.stride, self.pad = as_pair("stride", stride, 1), as_pair("pad", pad, 0)
        self.input_grad = input_grad
        self.weight = nn.Parameter(W.detach().clone())
        self.bias = nn.Parameter(b.detach().clone())

    @property
    def W(self) -> torch.Tensor:
        return self.weight

    @property
    def b(self) -> torch.Tensor:
        return self.bias

    @property
    def dW(self) -> torch.Tensor | None:
        return self.weight.grad

    @property
    def db(self) -> torch.Tensor | None:
        return self.bias.grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, fh, fw = self.weight.shape[1:]
        if x.dim() != 4 or x.shape[1] != c:
            raise ValueError(f"x: expected shape (N, {c}, H, W) for W "
                             f"{tuple(self.weight.shape)}, got {tuple(x.shape)}")
        check_batch("x", tuple(x.shape))
        conv_output_size(tuple(x.shape[2:]), (fh, fw), self.stride, self.pad)
        check_input_dtype(x, self.weight)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.pad)


class Pooling(nn.Module):
    """``F.max_pool2d`` / ``F.avg_pool2d``; stride defaults to the window, as in torch."""

    MODES = POOL_MODES

    def __init__(self, pool_h: int, pool_w: int, stride: int | Sequence[int] | None = None,
                 pad: int | Sequence[int] = 0, mode: str = "max") -> None:
        super().__init__()
        self.kernel, self.stride, self.pad = pool_args(pool_h, pool_w, stride, pad, mode)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_ndim("x", tuple(x.shape), (4,))
        check_batch("x", tuple(x.shape))
        conv_output_size(tuple(x.shape[2:]), self.kernel, self.stride, self.pad)
        if self.mode == "max":
            return F.max_pool2d(x, self.kernel, self.stride, self.pad)
        return F.avg_pool2d(x, self.kernel, self.stride, self.pad, count_include_pad=True)
