"""Mirror of ``scratch.perceptron``: logic gates as perceptrons on tensors."""

from __future__ import annotations

import torch


def _perceptron(x1: torch.Tensor, x2: torch.Tensor, w1: float, w2: float,
                b: float) -> torch.Tensor:
    x1 = torch.as_tensor(x1, dtype=torch.float64)
    x2 = torch.as_tensor(x2, dtype=torch.float64, device=x1.device)
    return (w1 * x1 + w2 * x2 + b > 0).long()


def AND(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return _perceptron(x1, x2, 0.5, 0.5, -0.7)


def NAND(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return _perceptron(x1, x2, -0.5, -0.5, 0.7)


def OR(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return _perceptron(x1, x2, 0.5, 0.5, -0.2)


def XOR(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    return AND(NAND(x1, x2), OR(x1, x2))
