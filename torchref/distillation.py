"""Mirror of ``scratch.distillation`` on ``F.kl_div`` / ``F.log_softmax`` / ``F.cross_entropy``.

By default ``L = T^2 * KL(softmax(t/T) || softmax(s/T)) + CE(s, labels)``, the reference
text's ``KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) * T^2
+ cross_entropy(s, labels)``; with ``alpha``: ``alpha * T^2 * KL + (1 - alpha) * CE``.
KL and CE are means over the batch; the gradient is autograd's.  The teacher's
logits are detached: no gradient reaches the teacher.  ``F.kl_div`` gets
log-probabilities for both arguments (``log_target=True``), which stays finite
where a teacher probability underflows.  See ``scratch.distillation`` for the derivation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import check_distillation_args, check_same_shape
from scratch.distillation import loss_weights, resolve_temperature
from torchref.functions import as_float_tensor
from torchref.losses import _batched, check_distribution_rows, check_target_tensor


def distillation_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       labels: torch.Tensor,
                       temperature: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(KL(p || q) batch mean, cross-entropy)``, before the alpha / T^2 weighting."""
    check_distillation_args(temperature, 0.0)
    T = float(temperature)
    s = as_float_tensor(student_logits)
    t = torch.as_tensor(teacher_logits, device=s.device)
    check_same_shape("student_logits", tuple(s.shape), "teacher_logits", tuple(t.shape))
    t = t.detach().to(s.dtype)
    y = torch.as_tensor(labels, device=s.device)
    is_int = check_target_tensor(s, y, "student_logits", "labels")
    if not is_int:
        check_distribution_rows(y.to(s.dtype), "labels")
    t, _ = _batched(t, y, is_int)
    s, y = _batched(s, y, is_int)
    kl = F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1),
                  reduction="batchmean", log_target=True)
    ce = F.cross_entropy(s, y.long() if is_int else y.to(s.dtype))
    return kl, ce


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor, temperature: float = 2.0,
                      alpha: float | None = None) -> torch.Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T)) + CE(s, labels)``; with ``alpha``:
    ``alpha * T^2 * KL + (1 - alpha) * CE``."""
    w_soft, w_hard = loss_weights(temperature, alpha)
    T = float(temperature)
    kl, ce = distillation_terms(student_logits, teacher_logits, labels, T)
    return w_soft * T**2 * kl + w_hard * ce


class DistillationLoss(nn.Module):
    """``forward(student_logits, teacher_logits, labels)``: the distillation loss (autograd).

    ``DistillationLoss(T=2.0)`` is the reference text's ``T^2 KL + CE``;
    ``DistillationLoss(T, alpha)`` the weighted form; ``temperature=`` is ``T``'s older name.
    """

    def __init__(self, T: float = 2.0, alpha: float | None = None, *,
                 temperature: float | None = None) -> None:
        super().__init__()
        T = resolve_temperature(T, temperature)
        loss_weights(T, alpha)
        self.temperature, self.alpha = float(T), None if alpha is None else float(alpha)

    @property
    def T(self) -> float:
        """The temperature."""
        return self.temperature

    def extra_repr(self) -> str:
        return f"T={self.temperature}, alpha={self.alpha}"

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        return distillation_loss(student_logits, teacher_logits, labels,
                                 self.temperature, self.alpha)
