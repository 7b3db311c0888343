"""Embedding: accumulation of repeated indices, central differences, out-of-vocabulary errors.

Forward/backward parity with ``nn.Embedding`` and ``F.embedding`` on every device
and dtype is the components table's ``Embedding`` row.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given

from scratch.embedding import Embedding
from scratch.gradient import gradcheck
from torchref.embedding import Embedding as TorchEmbedding
from torchref.parity import Case
from torchref.testing import strategies as S


def test_repeated_indices_accumulate() -> None:
    layer = Embedding(np.zeros((3, 2)))
    layer.forward(np.array([[1, 1], [1, 0]]))
    layer.backward(np.ones((2, 2, 2)))
    np.testing.assert_array_equal(layer.dW, [[1, 1], [3, 3], [0, 0]])


@given(case=S.embedding_case(np.float64, nonfinite=False), seed=S.seeds)
def test_dW_vs_central_differences(case: Case, seed: int) -> None:
    (idx,), (W,) = case.args, case.init
    v = np.random.default_rng(seed).standard_normal((*idx.shape, W.shape[1]))

    def grads(W: np.ndarray) -> np.ndarray:
        layer = Embedding(W)
        layer.forward(idx)
        layer.backward(v)
        return layer.dW
    gradcheck(lambda W: float(np.sum(v * Embedding(W).forward(idx))), W, grads).raise_if_failed()


@pytest.mark.parametrize(("idx", "message"), [
    (np.array([0, 5]), r"^idx: expected indices in \[0, 5\) \(the vocabulary size\), got min 0, "
                       r"max 5$"),
    (np.array([[-1]]), r"^idx: expected indices in \[0, 5\) .* got min -1, max -1$"),
    (np.array([0.0, 1.0]), r"^idx: expected an integer array of token indices$"),
])
def test_out_of_vocabulary_same_message(idx: np.ndarray, message: str,
                                        device: torch.device) -> None:
    W = np.zeros((5, 2))
    with pytest.raises(ValueError, match=message) as ours:
        Embedding(W).forward(idx)
    with pytest.raises(ValueError) as theirs:
        TorchEmbedding(torch.from_numpy(W).to(device))(torch.from_numpy(idx).to(device))
    assert str(ours.value) == str(theirs.value)


def test_W_must_be_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"^W: "):
        Embedding(np.zeros(3))
    with pytest.raises(ValueError, match=r"^W: "):
        TorchEmbedding(torch.zeros(3))
