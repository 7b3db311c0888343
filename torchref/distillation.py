"""Mirror of ``scratch.distillation`` on ``F.kl_div`` / ``F.log_softmax`` / ``F.cross_entropy``.

``L = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``,
KL and CE means over the batch; the gradient is autograd's.  The teacher's
logits are detached: no gradient reaches the teacher.  ``F.kl_div`` gets
log-probabilities for both arguments (``log_target=True``), which stays finite
where a teacher probability underflows; the common recipe's
``KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) * T^2
+ cross_entropy(s, labels)`` equals ``2 * distillation_loss(..., alpha=0.5)``.
See ``scratch.distillation`` for the derivation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scratch._checks import check_distillation_args, check_same_shape
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
                      alpha: float = 0.5) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``."""
    check_distillation_args(temperature, alpha)
    T, alpha = float(temperature), float(alpha)
    kl, ce = distillation_terms(student_logits, teacher_logits, labels, T)
    return alpha * T**2 * kl + (1.0 - alpha) * ce


class DistillationLoss(nn.Module):
    """``forward(student_logits, teacher_logits, labels)``: the distillation loss (autograd)."""

    def __init__(self, temperature: float = 2.0, alpha: float = 0.5) -> None:
        super().__init__()
        check_distillation_args(temperature, alpha)
        self.temperature, self.alpha = float(temperature), float(alpha)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}"

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        return distillation_loss(student_logits, teacher_logits, labels,
                                 self.temperature, self.alpha)
