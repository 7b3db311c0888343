"""Logic gates: scratch vs torchref vs their truth tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scratch.perceptron as sp
import torchref.perceptron as tp

X1, X2 = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
TRUTH = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1], "XOR": [0, 1, 1, 0]}


@pytest.mark.parametrize("gate", sorted(TRUTH))
def test_truth_table(gate: str, device: torch.device) -> None:
    assert getattr(sp, gate)(X1, X2).tolist() == TRUTH[gate]
    assert [int(getattr(sp, gate)(a, b)) for a, b in zip(X1, X2, strict=True)] == TRUTH[gate]
    out = getattr(tp, gate)(torch.from_numpy(X1).to(device), torch.from_numpy(X2).to(device))
    assert out.cpu().tolist() == TRUTH[gate]
