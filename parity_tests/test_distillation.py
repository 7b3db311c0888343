"""Knowledge distillation: scratch (hand-derived backward) vs torchref (F.kl_div, autograd).

Parity of the loss, its two terms and its gradient across temperatures, alpha
(both ends), integer and one-hot labels, extreme logits, float32 and float64
and every device; then properties of the math itself (alpha = 0 is
cross-entropy, student == teacher has no soft loss, the high-temperature
limit of the gradient with the derived remainder bounds).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

import scratch.distillation as sd
import scratch.layers as sla
import scratch.losses as sl
import torchref.distillation as td
import torchref.layers as tla
import torchref.losses as tl
from scratch.gradient import numerical_gradient
from torchref.testing import strategies as S
from torchref.tolerance import assert_close, tolerance

Case = tuple[np.ndarray, np.ndarray, np.ndarray, float, float]


def _torch_side(s: np.ndarray, t: np.ndarray, labels: np.ndarray, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    st_ = torch.from_numpy(s).to(device).requires_grad_(True)
    tt = torch.from_numpy(t).to(device).requires_grad_(True)
    return st_, tt, torch.from_numpy(labels).to(device)


@given(case=S.distillation_case(one_dim=None), onehot=st.booleans())
@example(case=(np.array([[1e4, -1e4, 0.0]]), np.array([[-1e4, 1e4, 0.0]]), np.array([2]),
               0.1, 0.5), onehot=False)
@example(case=(np.array([[1e4, -1e4, 0.0]], dtype=np.float32),
               np.array([[-1e4, 1e4, 0.0]], dtype=np.float32), np.array([0]), 100.0, 1.0),
         onehot=True)
@example(case=(np.array([3.0, -2.0, 0.5]), np.array([0.0, 0.0, 0.0]), np.array(1), 4.0, 0.0),
         onehot=False)
def test_distillation_parity(case: Case, onehot: bool, device: torch.device) -> None:
    """Loss, its terms and dL/ds: scratch vs torchref on ``device``; no gradient to the teacher."""
    s, t, labels, T, alpha = case
    target = S.onehot(labels, s.shape[-1], s.dtype) if onehot else labels
    layer = sla.DistillationLoss(T, alpha)
    dout = 0.5
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        kl, ce = sd.distillation_terms(s, t, target, T)
        loss = sd.distillation_loss(s, t, target, T, alpha)
        layer_loss = layer.forward(s, t, target)
        dx = layer.backward(dout)
    assert np.isfinite(loss) and loss.dtype == s.dtype and dx.dtype == s.dtype
    assert dx.shape == s.shape
    assert layer_loss == loss, "layer forward and the function must be the same computation"

    st_, tt, yt = _torch_side(s, t, target, device)
    kl_t, ce_t = td.distillation_terms(st_, tt, yt, T)
    assert_close(kl_t, kl, msg="KL term (batch mean)")
    assert_close(ce_t, ce, msg="cross-entropy term")
    loss_t = tla.DistillationLoss(T, alpha)(st_, tt, yt)
    assert_close(td.distillation_loss(st_, tt, yt, T, alpha), loss_t.detach(),
                 msg="torchref function vs module")
    # float32 at alpha T^2 > 1: the total multiplies the float32 rounding of the KL
    # term by alpha T^2 (torchref.tolerance, "Known divergences"); its terms are
    # compared above, at the policy's float32 tolerance.
    if s.dtype == np.float64 or alpha * T**2 <= 1:
        assert_close(loss_t, loss, msg="distillation loss")
    (loss_t * dout).backward()
    assert_close(st_.grad, dx, msg="dL/ds: autograd vs hand-derived")
    assert tt.grad is None, "the teacher must get no gradient"


@given(case=S.distillation_case(dtype=np.float64, max_n=3, max_c=4, kinds=("unit",)))
def test_distillation_gradient_numerical(case: Case) -> None:
    """Hand-derived backward vs central differences of the loss (float64, unit scale)."""
    s, t, labels, T, alpha = case
    s = s / max(1.0, np.abs(s).max()) * 5
    layer = sla.DistillationLoss(T, alpha)
    layer.forward(s, t, labels)
    num = numerical_gradient(lambda z: sd.distillation_loss(z, t, labels, T, alpha), s)
    assert_close(layer.backward(), num, mode="numerical")


@given(case=S.distillation_case(dtype=np.float64))
def test_pytorch_recipe_is_twice_alpha_half(case: Case, device: torch.device) -> None:
    """``KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T)) T^2 + CE`` = 2 L(alpha=1/2)."""
    s, t, labels, T, _ = case
    st_, tt, yt = _torch_side(s, t, labels, device)
    recipe = (nn.KLDivLoss(reduction="batchmean")(F.log_softmax(st_ / T, dim=-1),
                                                   F.softmax(tt / T, dim=-1)) * T**2
              + F.cross_entropy(st_, yt))
    layer = sla.DistillationLoss(T, 0.5)
    loss = layer.forward(s, t, labels)
    assert_close(recipe, 2 * loss, msg="recipe vs 2 * distillation_loss(alpha=0.5)")
    recipe.backward()
    assert_close(st_.grad, 2 * layer.backward(), msg="recipe gradient vs 2 * hand-derived")


@given(case=S.distillation_case(one_dim=None), onehot=st.booleans())
def test_alpha_zero_is_cross_entropy(case: Case, onehot: bool) -> None:
    s, t, labels, T, _ = case
    target = S.onehot(labels, s.shape[-1], s.dtype) if onehot else labels
    layer, ce_layer = sla.DistillationLoss(T, 0.0), sla.SoftmaxWithLoss()
    assert_close(layer.forward(s, t, target), sl.softmax_cross_entropy(s, target))
    ce_layer.forward(s, target)
    assert_close(layer.backward(), ce_layer.backward(), msg="dL/ds at alpha = 0")
    st_, tt, yt = _torch_side(s, t, target, torch.device("cpu"))
    assert_close(td.distillation_loss(st_, tt, yt, T, 0.0), tl.softmax_cross_entropy(st_, yt))


@given(case=S.distillation_case(one_dim=None))
def test_student_equal_teacher_has_no_soft_loss(case: Case, device: torch.device) -> None:
    """KL(p || p) = 0 and q - p = 0: at alpha = 1 both loss and gradient vanish."""
    s, _, labels, T, _ = case
    zero = np.zeros((), dtype=s.dtype)
    kl, _ = sd.distillation_terms(s, s.copy(), labels, T)
    assert_close(kl, zero, msg="KL(p || p)")
    layer = sla.DistillationLoss(T, 1.0)
    assert_close(layer.forward(s, s.copy(), labels), zero, msg="loss at alpha = 1")
    assert_close(layer.backward(), np.zeros_like(s), msg="dL/ds at alpha = 1")
    st_, tt, yt = _torch_side(s, s.copy(), labels, device)
    assert_close(td.distillation_terms(st_, tt, yt, T)[0], zero, msg="torchref KL(p || p)")


@given(case=S.distillation_case(dtype=np.float64, kinds=("unit",)),
       T=st.floats(1.0, S.TEMPERATURE_RANGE[1]))
@example(case=(np.array([[2.0, -1.0, 0.5, 7.0]]), np.array([[0.0, 3.0, -3.0, 1.0]]),
               np.array([0]), 0.0, 1.0), T=100.0)
def test_soft_gradient_high_temperature_limit(case: Case, T: float) -> None:
    """``T (q - p) = ((s - s̄) - (t - t̄)) / C + c2 / T + O(1/T^2)``, with the remainder bounds.

    From the module docstring of ``scratch.distillation``: per row, with R the
    range of the row's logits,
        |T (q - p) - h'(0)|             <= (R_s^2 + R_t^2) / (2T)
        |T (q - p) - h'(0) - c2 / T|    <= (R_s^3 + R_t^3) / (3T^2)
    T (q - p) is N times the layer's gradient at alpha = 1.  The float64
    policy's atol is the allowance for rounding (T (q - p) is exact to ~T u).
    """
    s, t, labels, _, _ = case
    n, c = s.shape
    layer = sla.DistillationLoss(T, 1.0)
    layer.forward(s, t, labels)
    scaled = n * layer.backward()                               # T (q - p)
    sc, tc = s - s.mean(-1, keepdims=True), t - t.mean(-1, keepdims=True)
    limit = (sc - tc) / c
    c2 = ((sc**2 - (sc**2).mean(-1, keepdims=True))
          - (tc**2 - (tc**2).mean(-1, keepdims=True))) / (2 * c)
    r_s, r_t = np.ptp(s, axis=-1, keepdims=True), np.ptp(t, axis=-1, keepdims=True)
    slack = tolerance(np.float64).atol
    assert np.all(np.abs(scaled - limit) <= (r_s**2 + r_t**2) / (2 * T) + slack)
    assert np.all(np.abs(scaled - limit - c2 / T) <= (r_s**3 + r_t**3) / (3 * T**2) + slack)


ERRORS = [
    # (kwargs overriding a valid call, message pattern)
    ({"temperature": 0.0}, r"temperature: expected a positive finite number, got 0.0"),
    ({"temperature": -1.0}, r"temperature: expected a positive finite number, got -1.0"),
    ({"temperature": float("nan")}, r"temperature: expected a positive finite number, got nan"),
    ({"temperature": float("inf")}, r"temperature: expected a positive finite number, got inf"),
    ({"alpha": -0.1}, r"alpha: expected a number in \[0, 1\], got -0.1"),
    ({"alpha": 1.5}, r"alpha: expected a number in \[0, 1\], got 1.5"),
    ({"alpha": float("nan")}, r"alpha: expected a number in \[0, 1\], got nan"),
    ({"teacher_logits": np.zeros((4, 2))},
     re.escape("teacher_logits: expected shape (4, 3) to match student_logits, got (4, 2)")),
    ({"labels": np.array([0, 1, 2, 3])}, r"labels: expected integers in \[0, 3\), got max 3"),
    ({"labels": np.zeros((4, 2))}, r"labels: one-hot targets must have the shape"),
    ({"student_logits": np.zeros((2, 2, 3)), "teacher_logits": np.zeros((2, 2, 3))},
     r"student_logits: expected a 1-D or 2-D array"),
]


@pytest.mark.parametrize(("override", "pattern"), ERRORS)
def test_errors_same_on_both_sides(override: dict, pattern: str) -> None:
    kwargs = {"student_logits": np.zeros((4, 3)), "teacher_logits": np.ones((4, 3)),
              "labels": np.array([0, 1, 2, 0]), "temperature": 2.0, "alpha": 0.5, **override}
    with pytest.raises(ValueError, match=pattern) as scratch_err:
        sd.distillation_loss(**kwargs)
    torch_kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=pattern) as torch_err:
        td.distillation_loss(**torch_kwargs)
    assert str(scratch_err.value) == str(torch_err.value)
    if "temperature" in override or "alpha" in override:
        for cls in (sla.DistillationLoss, tla.DistillationLoss):
            with pytest.raises(ValueError, match=pattern):
                cls(kwargs["temperature"], kwargs["alpha"])


def test_backward_does_not_mutate_and_teacher_dtype_follows_student() -> None:
    s = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    t = np.array([[3.0, 2.0, 1.0]])                       # float64 teacher: cast to float32
    layer = sla.DistillationLoss(3.0, 0.7)
    assert layer.forward(s, t, np.array([1])).dtype == np.float32
    dout = np.float32(2.0)
    dx = layer.backward(dout)
    assert dx.dtype == np.float32 and dout == 2.0
    assert td.distillation_loss(torch.from_numpy(s), torch.from_numpy(t),
                                torch.tensor([1]), 3.0, 0.7).dtype == torch.float32
