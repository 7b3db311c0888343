"""The distillation loss's default: the reference text's recipe, on both sides.

``DistillationLoss(T=2.0)(s, t, labels)`` must equal
``KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T)) * T^2 + cross_entropy(s, labels)``,
computed here with plain torch ops; ``alpha=`` keeps the weighted form.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from torch import nn

import scratch.distillation as sl
import scratch.layers as sla
import torchref.distillation as tl
import torchref.layers as tla
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close

Case = tuple[np.ndarray, np.ndarray, np.ndarray, float, float]


def text_terms(s: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
               T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The text's two terms, ``KLDivLoss(batchmean)(...) * T^2`` and ``cross_entropy``."""
    if s.dim() == 1:
        s, t, labels = s[None], t[None], labels[None]
    soft = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / T, dim=1),
                                               F.softmax(t / T, dim=1)) * T * T
    return soft, F.cross_entropy(s, labels)


@given(case=S.distillation_case(dtype=np.float64, one_dim=None))
@example(case=(np.array([[3.0, -2.0, 0.5], [0.0, 1.0, 0.0]]), np.array([[0.0, 4.0, -1.0]] * 2),
               np.array([0, 2]), 2.0, 0.5))
def test_default_is_the_text_recipe(case: Case, device: torch.device) -> None:
    """Every entry point, both sides, default arguments but T: loss and dL/ds (float64)."""
    s, t, labels, T, _ = case
    st_ = torch.from_numpy(s).to(device).requires_grad_(True)
    tt, yt = torch.from_numpy(t).to(device), torch.from_numpy(labels).to(device)
    soft, hard = text_terms(st_, tt, yt, T)
    recipe = soft + hard
    recipe.backward()
    layer = sla.DistillationLoss(T)
    assert_close(recipe, layer.forward(s, t, labels), msg="scratch layer vs the text's recipe")
    assert_close(st_.grad, layer.backward(), msg="hand-derived dL/ds vs autograd of the recipe")
    assert_close(recipe, sl.distillation_loss(s, t, labels, T), msg="scratch function")
    mine = torch.from_numpy(s).to(device).requires_grad_(True)
    loss = tla.DistillationLoss(T=T)(mine, tt, yt)
    assert_close(recipe, loss, msg="torchref module vs the text's recipe")
    loss.backward()
    assert_close(st_.grad, mine.grad, msg="torchref dL/ds vs the recipe's")
    assert_close(recipe, tl.distillation_loss(mine, tt, yt, T), msg="torchref function")


@given(case=S.distillation_case(one_dim=None))
def test_default_gradient_both_dtypes(case: Case) -> None:
    """dL/ds of the default in float32 and float64: hand-derived vs autograd of the recipe
    (the gradient ``T (q - p) + softmax(s) - y`` has no T^2 to amplify rounding)."""
    s, t, labels, T, _ = case
    st_ = torch.from_numpy(s).requires_grad_(True)
    sum(text_terms(st_, torch.from_numpy(t), torch.from_numpy(labels), T)).backward()
    layer = sla.DistillationLoss(T)
    layer.forward(s, t, labels)
    assert_close(st_.grad, layer.backward(0.5) * 2, msg="dL/ds")


@given(case=S.distillation_case(dtype=np.float64))
def test_alpha_keyword_keeps_the_weighted_form(case: Case) -> None:
    """``alpha=``: ``alpha * T^2 KL + (1 - alpha) CE``, against the text's terms weighted."""
    s, t, labels, T, alpha = case
    soft, hard = text_terms(torch.from_numpy(s), torch.from_numpy(t),
                            torch.from_numpy(labels), T)
    expected = alpha * soft + (1 - alpha) * hard
    assert_close(expected, sla.DistillationLoss(T, alpha=alpha).forward(s, t, labels))
    assert_close(expected, tla.DistillationLoss(T, alpha=alpha)(
        torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(labels)))


@given(case=S.distillation_case(dtype=np.float64, max_n=3, max_c=4, kinds=("unit",)))
def test_default_backward_vs_numerical(case: Case) -> None:
    s, t, labels, T, _ = case
    layer = sla.DistillationLoss(T)
    layer.forward(s, t, labels)
    num = numerical_gradient(lambda z: sl.distillation_loss(z, t, labels, T), s)
    assert_close(layer.backward(), num, mode="numerical")


def test_temperature_keyword_and_defaults() -> None:
    s, t, y = np.array([[1.0, 2.0, 0.5]]), np.array([[0.0, 1.0, 3.0]]), np.array([1])
    for cls in (sla.DistillationLoss, tla.DistillationLoss):
        assert cls().T == cls().temperature == 2.0 and cls().alpha is None
        assert cls(temperature=3.0).T == cls(T=3.0).T == 3.0     # the older keyword
        with pytest.raises(ValueError, match="temperature: pass T or temperature"):
            cls(T=4.0, temperature=3.0)
        with pytest.raises(ValueError, match="temperature: expected a positive finite"):
            cls(T=0.0)
    a = sla.DistillationLoss(temperature=3.0, alpha=0.25).forward(s, t, y)
    assert a == sla.DistillationLoss(3.0, 0.25).forward(s, t, y)
